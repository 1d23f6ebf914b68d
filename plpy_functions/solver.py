"""Day re-planning: assign a day's bookings to tables and table combinations.

Plain Python, so it runs the same inside PL/Python (optimize_day) and in unit tests and
benchmarks. The exact solver is a MILP solved by SciPy's HiGHS; without SciPy, or when the
time limit is hit without a usable solution, a deterministic greedy pass with local search
is used instead.

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
    if b.locked:
        return [tuple(sorted(b.current))] if b.current is not None else []
    fits = [k for k, r in resources.items() if r.min_capacity <= b.party <= r.max_capacity]
    if b.current is not None and tuple(sorted(b.current)) not in fits:
        fits.append(tuple(sorted(b.current)))
    return sorted(fits)


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


def solve(
    resources: Iterable[Resource],
    bookings: Sequence[Booking],
    *,
    time_limit: float | None = 2.0,
    method: str = "auto",
) -> Result:
    """Assign the bookings. ``method``: "auto" (MILP, greedy if unavailable), "milp", "greedy"."""
    started = time.perf_counter()
    index = _index(resources, bookings)
    bookings = sorted(bookings, key=lambda b: b.id)
    if method in ("auto", "milp"):
        try:
            result = _solve_milp(index, bookings, time_limit, started)
        except ImportError:
            if method == "milp":
                raise
            result = None
        if result is not None:
            result.solve_ms = round((time.perf_counter() - started) * 1000, 3)
            return result
    assignment = _greedy(index, bookings)
    assignment = _local_search(index, bookings, assignment)
    return Result(
        assignment,
        objective(assignment, bookings, index),
        "greedy",
        "heuristic",
        round((time.perf_counter() - started) * 1000, 3),
    )


def _solve_milp(
    index: dict[tuple[int, ...], Resource],
    bookings: Sequence[Booking],
    time_limit: float | None,
    started: float,
) -> Result | None:
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

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
        # The limit covers the whole call: building the model counts against it.
        options["time_limit"] = max(0.05, float(time_limit) - (time.perf_counter() - started))
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


def _greedy(
    index: dict[tuple[int, ...], Resource], bookings: Sequence[Booking]
) -> dict[int, tuple[int, ...] | None]:
    assignment: dict[int, tuple[int, ...] | None] = {b.id: None for b in bookings}
    taken: dict[int, list[Booking]] = {}
    # Locked and must-seat bookings keep their current tables; the rest fill the gaps.
    order = sorted(
        bookings,
        key=lambda b: (
            not (b.locked or (b.must_seat and b.current is not None)),
            -b.party,
            b.start,
            b.id,
        ),
    )
    for b in order:
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


def _local_search(
    index: dict[tuple[int, ...], Resource],
    bookings: Sequence[Booking],
    assignment: dict[int, tuple[int, ...] | None],
    rounds: int = 3,
) -> dict[int, tuple[int, ...] | None]:
    """Seat unseated bookings by moving one blocking booking elsewhere, while it pays."""
    by_id = {b.id: b for b in bookings}
    for _ in range(rounds):
        improved = False
        for b in sorted(bookings, key=lambda x: (-x.party, x.start, x.id)):
            if assignment[b.id] is not None or b.locked:
                continue
            for r in sorted(_candidates(b, index), key=lambda r: (-value(b, r, index), r)):
                blockers = {
                    o
                    for o in assignment
                    if assignment[o] is not None
                    and o != b.id
                    and set(assignment[o] or ()) & set(r)
                    and _overlap(by_id[o], b)
                }
                if len(blockers) != 1:
                    continue
                (o,) = blockers
                other = by_id[o]
                if other.locked:
                    continue
                trial = dict(assignment)
                trial[o] = None
                for alt in sorted(
                    _candidates(other, index), key=lambda x: (-value(other, x, index), x)
                ):
                    if set(alt) & set(r):
                        continue
                    trial[o] = alt
                    trial[b.id] = r
                    if feasible(trial, bookings):
                        break
                    trial[o] = None
                    trial[b.id] = None
                if trial.get(b.id) is not None and objective(trial, bookings, index) > objective(
                    assignment, bookings, index
                ):
                    assignment = trial
                    improved = True
                    break
        if not improved:
            break
    return assignment
