"""Day re-planning: assign a day's bookings to tables and table combinations.

Plain Python, so it runs the same inside PL/Python (optimize_day) and in unit tests and
benchmarks. The exact solver is a MILP solved by SciPy's HiGHS; without SciPy, or when the
time limit is hit without a usable solution, a deterministic heuristic is used instead: a
greedy pass in each of three orders (by start, by end, largest party first), each improved by
local search, the best kept.

Objective (maximised, lexicographic through weights):
  1. covers seated (party sizes of seated bookings), then parties seated;
  2. fewer wasted seats (resource max capacity - party);
  3. fewer combinations (tables beyond the first);
  4. fewer moves (a confirmed booking put on other tables);
  5. zone preferences met.
Locked bookings (seated, in the past, manually assigned) keep their tables; bookings that
must be seated (confirmed ones) may move but are never left without a table.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# A cover outweighs any number of parties a day can hold (up to 99), so covers come first.
W_COVER = 100_000
W_PARTY = 1_000
W_WASTE = 10
W_COMBINATION = 5
W_MOVE = 3
W_ZONE = 1


@dataclass(frozen=True)
class Resource:
    """A single table or a combination of tables that can seat one party."""

    table_ids: tuple[int, ...]
    min_capacity: int
    max_capacity: int
    zone_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Booking:
    """A booking of the day: times in minutes (any origin), current tables if assigned."""

    id: int
    party: int
    start: float
    end: float
    current: tuple[int, ...] | None = None
    locked: bool = False
    must_seat: bool = False
    preferred_zone: int | None = None


@dataclass
class Result:
    """An assignment: booking id -> table ids (None: not seated)."""

    assignment: dict[int, tuple[int, ...] | None]
    objective: float
    solver: str
    status: str
    solve_ms: float
    stats: dict[str, float] = field(default_factory=dict)


def value(
    booking: Booking, resource: tuple[int, ...], resources: dict[tuple[int, ...], Resource]
) -> float:
    """Objective contribution of seating ``booking`` on ``resource``."""
    res = resources[resource]
    score = W_COVER * booking.party + W_PARTY
    score -= W_WASTE * (res.max_capacity - booking.party)
    score -= W_COMBINATION * (len(res.table_ids) - 1)
    if booking.current is not None and tuple(sorted(booking.current)) != resource:
        score -= W_MOVE
    if booking.preferred_zone is not None and res.zone_ids == (booking.preferred_zone,):
        score += W_ZONE
    return float(score)


def objective(
    assignment: dict[int, tuple[int, ...] | None],
    bookings: Sequence[Booking],
    resources: dict[tuple[int, ...], Resource],
) -> float:
    """Objective value of an assignment."""
    return sum(
        value(b, assignment[b.id], resources) for b in bookings if assignment.get(b.id) is not None
    )  # type: ignore[arg-type]


def _index(
    resources: Iterable[Resource], bookings: Sequence[Booking]
) -> dict[tuple[int, ...], Resource]:
    index = {tuple(sorted(r.table_ids)): r for r in resources}
    # A locked or current assignment outside the known resources (seated by staff on tables
    # that do not nominally fit) stays representable.
    for b in bookings:
        if b.current is not None:
            key = tuple(sorted(b.current))
            if key not in index:
                index[key] = Resource(key, 1, max(b.party, 1))
    return index


def _candidates(b: Booking, resources: dict[tuple[int, ...], Resource]) -> list[tuple[int, ...]]:
    """The resources ``b`` may take: those that fit its party (and its current ones), less
    the dominated ones. A resource is dominated when a part of it (a proper subset of its
    tables) also fits and scores at least as well: any plan using the whole does as well with
    the part, which frees tables, so dropping it keeps the optimum and shrinks the model."""
    if b.locked:
        return [tuple(sorted(b.current))] if b.current is not None else []
    fits = {k for k, r in resources.items() if r.min_capacity <= b.party <= r.max_capacity}
    if b.current is not None:
        fits.add(tuple(sorted(b.current)))
    kept = []
    for k in fits:
        score = value(b, k, resources)
        parts = (
            part
            for size in range(1, len(k))
            for part in itertools.combinations(k, size)
            if part in fits
        )
        if not any(value(b, part, resources) >= score for part in parts):
            kept.append(k)
    return sorted(kept)


def _overlap(a: Booking, b: Booking) -> bool:
    return a.start < b.end and b.start < a.end


def feasible(assignment: dict[int, tuple[int, ...] | None], bookings: Sequence[Booking]) -> bool:
    """No table is given to two overlapping bookings."""
    by_table: dict[int, list[Booking]] = {}
    for b in bookings:
        for t in assignment.get(b.id) or ():
            by_table.setdefault(t, []).append(b)
    for items in by_table.values():
        items.sort(key=lambda x: (x.start, x.id))
        for i, first in enumerate(items):
            for second in items[i + 1 :]:
                if second.start >= first.end:
                    break
                return False
    return True


def blocks(bookings: Sequence[Booking]) -> list[list[Booking]]:
    """Split bookings into independent time blocks: no booking of one block overlaps a booking
    of another (a lunch service and a dinner service, say), so each block can be solved alone
    and the optimum of the whole is the union of the blocks' optima."""
    found: list[list[Booking]] = []
    end = float("-inf")
    for b in sorted(bookings, key=lambda x: (x.start, x.id)):
        if not found or b.start >= end:
            found.append([])
            end = b.end
        found[-1].append(b)
        end = max(end, b.end)
    return found


# Share of the time limit kept back for building the answer after HiGHS returns (HiGHS itself
# runs a little past its own limit).
TIME_MARGIN = 0.05
# Share of a block's time its MILP may use: the rest is for the heuristic when the MILP stops
# at its limit (HiGHS can stop with a poor incumbent that the heuristic beats).
MILP_SHARE = 0.8


def solve(
    resources: Iterable[Resource],
    bookings: Sequence[Booking],
    *,
    time_limit: float | None = 2.0,
    method: str = "auto",
) -> Result:
    """Assign the bookings. ``method``: "auto" (MILP, greedy if unavailable), "milp", "greedy".

    The day is solved block by block (see ``blocks``), smallest first; each block gets a share
    of the remaining time in proportion to its bookings. Its MILP may use MILP_SHARE of that
    share. A block whose MILP finds no solution is planned by the heuristic (``_heuristic``);
    with "auto", so is a block whose MILP stops at the limit, and the better plan is kept."""
    if method not in ("auto", "milp", "greedy"):
        raise ValueError(f"unknown method {method!r}")
    started = time.perf_counter()
    index = _index(resources, bookings)
    deadline = None if time_limit is None else started + float(time_limit) * (1 - TIME_MARGIN)
    pending = sorted(blocks(bookings), key=lambda block: (len(block), block[0].start))
    left = sum(len(block) for block in pending)
    assignment: dict[int, tuple[int, ...] | None] = {}
    solvers: set[str] = set()
    statuses: set[str] = set()
    stats: dict[str, float] = {"blocks": float(len(pending))}
    milp_ok = method != "greedy"
    for block in pending:
        block = sorted(block, key=lambda b: b.id)
        block_deadline = None
        if deadline is not None:
            share = max(0.05, (deadline - time.perf_counter()) * len(block) / left)
            block_deadline = time.perf_counter() + share
        left -= len(block)
        part = None
        if milp_ok:
            try:
                part = _solve_milp(
                    index, block, None if block_deadline is None else share * MILP_SHARE
                )
            except ImportError:
                if method == "milp":
                    raise
                milp_ok = False
        if part is not None:
            statuses.add(part.status)
            for key, number in part.stats.items():
                # Sizes add up over the blocks; the gap reported is the worst block's.
                merge = max if key == "mip_gap" else float.__add__
                stats[key] = merge(stats.get(key, 0.0), number)
            if part.status == "optimal" or method == "milp":
                solvers.add("milp")
                assignment.update(part.assignment)
                continue
        else:
            statuses.add("heuristic")
        found = _heuristic(index, block, block_deadline)
        if part is not None and objective(part.assignment, block, index) >= objective(
            found, block, index
        ):
            found = part.assignment
            solvers.add("milp")
        else:
            solvers.add("greedy")
        assignment.update(found)
    ordered = sorted(bookings, key=lambda b: b.id)
    status = next(
        (s for s in ("heuristic", "time_limit") if s in statuses),
        "optimal" if statuses <= {"optimal"} else "+".join(sorted(statuses)),
    )
    return Result(
        {b.id: assignment.get(b.id) for b in ordered},
        objective(assignment, ordered, index),
        "+".join(sorted(solvers)) if solvers else ("greedy" if method == "greedy" else "milp"),
        status,
        round((time.perf_counter() - started) * 1000, 3),
        stats,
    )


def _solve_milp(
    index: dict[tuple[int, ...], Resource],
    bookings: Sequence[Booking],
    time_limit: float | None,
) -> Result | None:
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    built = time.perf_counter()
    variables: list[tuple[Booking, tuple[int, ...]]] = []
    for b in bookings:
        for r in _candidates(b, index):
            variables.append((b, r))
    if not variables:
        return Result({b.id: None for b in bookings}, 0.0, "milp", "optimal", 0.0)
    n = len(variables)
    cost = np.array([-value(b, r, index) for b, r in variables])
    lower = np.zeros(n)
    upper = np.ones(n)
    rows: list[int] = []
    cols: list[int] = []
    row = 0
    # Each booking on at most one resource; a locked booking on exactly its own.
    by_booking: dict[int, list[int]] = {}
    for j, (b, _) in enumerate(variables):
        by_booking.setdefault(b.id, []).append(j)
    row_lower: list[float] = []
    for b in bookings:
        js = by_booking.get(b.id, [])
        if not js:
            continue
        for j in js:
            rows.append(row)
            cols.append(j)
        row_lower.append(1.0 if b.locked or b.must_seat else 0.0)
        row += 1
    # Each table holds at most one booking at any time: for every table, one row per
    # maximal set of bookings overlapping at some booking's start (interval cliques).
    by_table: dict[int, list[int]] = {}
    for j, (_, r) in enumerate(variables):
        for t in r:
            by_table.setdefault(t, []).append(j)
    for t in sorted(by_table):
        js = by_table[t]
        starts = sorted({variables[j][0].start for j in js})
        seen: set[tuple[int, ...]] = set()
        for s in starts:
            active = tuple(j for j in js if variables[j][0].start <= s < variables[j][0].end)
            if len({variables[j][0].id for j in active}) < 2 or active in seen:
                continue
            seen.add(active)
            for j in active:
                rows.append(row)
                cols.append(j)
            row_lower.append(-np.inf)
            row += 1
    matrix = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(row, n)).tocsr()
    upper_rows = np.ones(row)
    options: dict[str, float | bool] = {"disp": False}
    if time_limit is not None:
        # The limit covers building the model too.
        options["time_limit"] = max(0.05, float(time_limit) - (time.perf_counter() - built))
    res = milp(
        cost,
        integrality=np.ones(n),
        bounds=Bounds(lower, upper),
        constraints=LinearConstraint(matrix, np.array(row_lower), upper_rows),
        options=options,
    )
    if res.x is None:
        return None
    assignment: dict[int, tuple[int, ...] | None] = {b.id: None for b in bookings}
    for j, x in enumerate(res.x):
        # HiGHS returns 0.9999999 for 1: round, never compare to 1.
        if x > 0.5:
            assignment[variables[j][0].id] = variables[j][1]
    if not feasible(assignment, bookings):
        return None
    status = {0: "optimal", 1: "time_limit"}.get(res.status, f"status_{res.status}")
    return Result(
        assignment,
        objective(assignment, bookings, index),
        "milp",
        status,
        0.0,
        {"variables": n, "constraints": row, "mip_gap": float(getattr(res, "mip_gap", 0.0) or 0.0)},
    )


def _fits_now(b: Booking, r: tuple[int, ...], taken: dict[int, list[Booking]]) -> bool:
    return all(not _overlap(b, other) for t in r for other in taken.get(t, ()))


# The orders the greedy pass tries, best result kept: by start (interval packing), by end,
# and largest party first.
GREEDY_ORDERS = ("start", "end", "party")


def _order_key(order: str, b: Booking) -> tuple[float, ...]:
    if order == "start":
        return (b.start, -b.party, b.id)
    if order == "end":
        return (b.end, -b.party, b.id)
    return (-b.party, b.start, b.id)


def _greedy(
    index: dict[tuple[int, ...], Resource], bookings: Sequence[Booking], order: str = "start"
) -> dict[int, tuple[int, ...] | None]:
    assignment: dict[int, tuple[int, ...] | None] = {b.id: None for b in bookings}
    taken: dict[int, list[Booking]] = {}
    # Locked and must-seat bookings keep their current tables; the rest fill the gaps in
    # the given order, each on its best-scoring free resource.
    ordered = sorted(
        bookings,
        key=lambda b: (
            not (b.locked or (b.must_seat and b.current is not None)),
            *_order_key(order, b),
        ),
    )
    for b in ordered:
        if (b.locked or b.must_seat) and b.current is not None:
            options = [tuple(sorted(b.current))]
        else:
            options = sorted(_candidates(b, index), key=lambda r: (-value(b, r, index), r))
        for r in options:
            if b.locked or (b.must_seat and b.current is not None) or _fits_now(b, r, taken):
                assignment[b.id] = r
                for t in r:
                    taken.setdefault(t, []).append(b)
                break
    return assignment


def _heuristic(
    index: dict[tuple[int, ...], Resource], bookings: Sequence[Booking], deadline: float | None
) -> dict[int, tuple[int, ...] | None]:
    """The greedy pass in each of GREEDY_ORDERS, each improved by local search; the best
    feasible result (the first order's, at least, even past the deadline)."""
    first: dict[int, tuple[int, ...] | None] | None = None
    best: dict[int, tuple[int, ...] | None] | None = None
    best_score = float("-inf")
    for order in GREEDY_ORDERS:
        if first is not None and deadline is not None and time.perf_counter() > deadline:
            break
        found = _local_search(index, bookings, _greedy(index, bookings, order), deadline)
        first = first or found
        score = objective(found, bookings, index)
        if feasible(found, bookings) and score > best_score + 1e-9:
            best, best_score = found, score
    # Only tables already overlapping (locked bookings) make every result infeasible: the
    # first is as good as any then.
    result = best or first
    assert result is not None
    return result


def _local_search(
    index: dict[tuple[int, ...], Resource],
    bookings: Sequence[Booking],
    assignment: dict[int, tuple[int, ...] | None],
    deadline: float | None = None,
    rounds: int = 8,
) -> dict[int, tuple[int, ...] | None]:
    """Improve a feasible assignment, while it pays: seat each unseated booking on a free
    resource, or on a resource whose occupants are moved elsewhere or, when that gains
    covers, turned away (never a locked or must-seat booking). Stops at ``deadline``."""
    by_id = {b.id: b for b in bookings}
    assignment = dict(assignment)
    occupants: dict[int, list[int]] = {}
    for key, resource in assignment.items():
        for t in resource or ():
            occupants.setdefault(t, []).append(key)
    options = {
        b.id: sorted(_candidates(b, index), key=lambda r, b=b: (-value(b, r, index), r))
        for b in bookings
    }

    def blockers(b: Booking, resource: tuple[int, ...]) -> set[int]:
        return {
            o for t in resource for o in occupants.get(t, ()) if o != b.id and _overlap(by_id[o], b)
        }

    def place(key: int, resource: tuple[int, ...]) -> None:
        assignment[key] = resource
        for t in resource:
            occupants.setdefault(t, []).append(key)

    def unplace(key: int) -> tuple[int, ...]:
        resource = assignment[key]
        assert resource is not None
        for t in resource:
            occupants[t].remove(key)
        assignment[key] = None
        return resource

    def free_option(b: Booking) -> tuple[int, ...] | None:
        return next((r for r in options[b.id] if not blockers(b, r)), None)

    def try_seat(b: Booking, resource: tuple[int, ...]) -> bool:
        """Seat b on resource, re-seating its blockers elsewhere where they fit; keep the
        change only if the objective grows."""
        found = blockers(b, resource)
        if any(by_id[o].locked for o in found):
            return False
        saved = {o: unplace(o) for o in found}
        place(b.id, resource)
        gain = value(b, resource, index) - sum(value(by_id[o], r, index) for o, r in saved.items())
        moved = []
        for o in sorted(found, key=lambda o: (-by_id[o].party, by_id[o].start, o)):
            other = by_id[o]
            alt = free_option(other)
            if alt is not None:
                place(o, alt)
                moved.append(o)
                gain += value(other, alt, index)
            elif other.must_seat:
                gain = float("-inf")
                break
        if gain > 1e-9:
            return True
        unplace(b.id)
        for o in moved:
            unplace(o)
        for o, r in saved.items():
            place(o, r)
        return False

    for _ in range(rounds):
        improved = False
        for b in sorted(bookings, key=lambda x: (-x.party, x.start, x.id)):
            if deadline is not None and time.perf_counter() > deadline:
                return assignment
            if assignment[b.id] is not None or b.locked:
                continue
            free = free_option(b)
            if free is not None:
                place(b.id, free)
                improved = True
                continue
            if any(try_seat(b, r) for r in options[b.id]):
                improved = True
        if not improved:
            break
    return assignment
