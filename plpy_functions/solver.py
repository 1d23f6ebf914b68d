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

Time: ``solve`` keeps to its time limit whatever the size of the day. Every loop that can run
long reads the clock (``Clock``), and calls the caller's ``interrupt`` hook every
INTERRUPT_EVERY seconds at most: in PL/Python a query, which lets PostgreSQL act on a cancel
or statement_timeout. HiGHS runs in a child process, killed at its deadline or when the call
is cancelled: it holds the GIL and never returns to Python while it works, and HiGHS 1.2
(Debian 12's SciPy) does not check its time limit while presolving.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import select
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

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


Key = tuple[int, ...]

# The longest a loop goes without calling the interrupt hook (seconds).
INTERRUPT_EVERY = 0.02


class OutOfTime(Exception):
    """A step's deadline passed: the step stops and its caller keeps what it has."""


class Clock:
    """Deadlines and interrupts for the solver's loops. ``past(deadline)`` reads the clock and,
    at most every INTERRUPT_EVERY seconds, calls ``interrupt``, which may raise (in PL/Python:
    a query of the database, which raises when the statement was cancelled)."""

    def __init__(self, interrupt: Callable[[], object] | None = None) -> None:
        self.interrupt = interrupt
        self._next = 0.0

    def past(self, deadline: float | None) -> bool:
        now = time.perf_counter()
        if self.interrupt is not None and now >= self._next:
            self._next = now + INTERRUPT_EVERY
            self.interrupt()
        return deadline is not None and now > deadline

    def check(self, deadline: float | None) -> None:
        """Raise OutOfTime past ``deadline``."""
        if self.past(deadline):
            raise OutOfTime


def _candidates(b: Booking, resources: dict[Key, Resource]) -> list[Key]:
    """The resources ``b`` may take: those that fit its party (and its current ones), less
    the dominated ones. A resource is dominated when a part of it (a proper subset of its
    tables) also fits and scores at least as well: any plan using the whole does as well with
    the part, which frees tables, so dropping it keeps the optimum and shrinks the model.

    The definition, one booking at a time; ``_Options`` computes the same for a whole day."""
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


# The most a booking's own terms (a move, its zone) change the gap between two resources'
# values: a part whose base value is this much better dominates for every booking.
_ADJUST = W_MOVE + W_ZONE


@dataclass
class _Party:
    """The resources that fit a party size, and which of them no part dominates."""

    fits: dict[Key, int]  # resource -> its base value (waste and combination terms)
    kept: list[Key]  # sorted: no part dominates them for every booking
    kept_set: frozenset[Key]
    weak: dict[Key, list[Key]]  # kept resource -> parts that dominate it for some bookings
    weak_of: dict[Key, list[Key]]  # part -> kept resources it may dominate


class _Options:
    """Every booking's candidates (``_candidates``), and the same ranked best first, computed
    once per party size and preferred zone and adjusted for a booking's current tables, so the
    work grows with the resources, not with bookings times resources.

    Exact: value(b, part) - value(b, whole) is the gap of the two resources' base values
    (waste, combination) plus at most _ADJUST either way (move, zone). A part better by
    _ADJUST or more dominates for every booking; one within _ADJUST is compared booking by
    booking. A booking's current tables gain W_MOVE over every other resource: that changes
    only comparisons that involve them. Raises OutOfTime past the deadline it is given."""

    def __init__(self, index: dict[Key, Resource], clock: Clock | None = None) -> None:
        self.index = index
        self.clock = clock or Clock()
        self._parties: dict[int, _Party] = {}
        self._zone_kept: dict[tuple[int, int | None], tuple[list[Key], frozenset[Key]]] = {}
        self._zone_ranked: dict[tuple[int, int | None], list[Key]] = {}
        self._kept: dict[tuple[int, int | None, Key | None], list[Key]] = {}
        self._ranked: dict[tuple[int, int | None, Key | None], list[Key]] = {}
        # Resources by capacity range: a party's fits without a look at every resource.
        self._by_range: dict[tuple[int, int], list[Key]] | None = None

    def _party(self, party: int, deadline: float | None) -> _Party:
        found = self._parties.get(party)
        if found is not None:
            return found
        if self._by_range is None:
            by_range: dict[tuple[int, int], list[Key]] = {}
            for i, (k, r) in enumerate(self.index.items()):
                if not i & 4095:
                    self.clock.check(deadline)
                by_range.setdefault((r.min_capacity, r.max_capacity), []).append(k)
            self._by_range = by_range
        fits: dict[Key, int] = {}
        for (low, high), keys in self._by_range.items():
            if low <= party <= high:
                self.clock.check(deadline)
                for k in keys:
                    fits[k] = -(W_WASTE * high + W_COMBINATION * len(k))
        kept: list[Key] = []
        weak: dict[Key, list[Key]] = {}
        weak_of: dict[Key, list[Key]] = {}
        for i, (k, base) in enumerate(fits.items()):
            if not i & 255:
                self.clock.check(deadline)
            parts: list[Key] = []
            dominated = False
            for size in range(1, len(k)):
                for part in itertools.combinations(k, size):
                    other = fits.get(part)
                    if other is None:
                        continue
                    if other - base >= _ADJUST:
                        dominated = True
                        break
                    if other - base >= -_ADJUST:
                        parts.append(part)
                if dominated:
                    break
            if dominated:
                continue
            kept.append(k)
            if parts:
                weak[k] = parts
                for part in parts:
                    weak_of.setdefault(part, []).append(k)
        kept.sort()
        found = _Party(fits, kept, frozenset(kept), weak, weak_of)
        self._parties[party] = found
        return found

    def _for_zone(
        self, party: int, zone: int | None, deadline: float | None
    ) -> tuple[list[Key], frozenset[Key]]:
        """Candidates of a booking of ``party`` preferring ``zone``, without current tables."""
        key = (party, zone)
        found = self._zone_kept.get(key)
        if found is None:
            p = self._party(party, deadline)
            if p.weak:
                probe = Booking(0, party, 0.0, 0.0, preferred_zone=zone)
                kept = [
                    k
                    for k in p.kept
                    if not any(
                        value(probe, part, self.index) >= value(probe, k, self.index)
                        for part in p.weak.get(k, ())
                    )
                ]
                found = (kept, frozenset(kept))
            else:
                found = (p.kept, p.kept_set)
            self._zone_kept[key] = found
        return found

    def candidates(self, b: Booking, deadline: float | None = None) -> list[Key]:
        """``_candidates(b, index)``."""
        if b.locked:
            return [tuple(sorted(b.current))] if b.current is not None else []
        current = tuple(sorted(b.current)) if b.current is not None else None
        key = (b.party, b.preferred_zone, current)
        found = self._kept.get(key)
        if found is None:
            found, members = self._for_zone(b.party, b.preferred_zone, deadline)
            if current is not None:
                found = self._with_current(b, current, found, members, deadline)
            self._kept[key] = found
        return found

    def _with_current(
        self,
        b: Booking,
        current: Key,
        kept: list[Key],
        members: frozenset[Key],
        deadline: float | None,
    ) -> list[Key]:
        p = self._party(b.party, deadline)
        index = self.index
        if current in p.fits:
            # Only where the current tables were within _ADJUST of a whole can they now win.
            wholes: Iterable[Key] = p.weak_of.get(current, ())
            keep = current in p.kept_set and not any(
                value(b, part, index) >= value(b, current, index)
                for part in p.weak.get(current, ())
            )
        else:
            # Tables that do not nominally fit the party (a party changed, or seated by staff).
            tables = set(current)
            wholes = []
            for i, k in enumerate(kept):
                if not i & 1023:
                    self.clock.check(deadline)
                if len(k) > len(current) and tables.issubset(k):
                    wholes.append(k)
            keep = not any(
                value(b, part, index) >= value(b, current, index)
                for size in range(1, len(current))
                for part in itertools.combinations(current, size)
                if part in p.fits
            )
        score = value(b, current, index)
        drop = {k for k in wholes if k in members and score >= value(b, k, index)}
        if not drop and keep == (current in members):
            return kept
        changed = [k for k in kept if k not in drop and k != current]
        if keep:
            changed.append(current)
            changed.sort()
        return changed

    def ranked(self, b: Booking, deadline: float | None = None) -> list[Key]:
        """The candidates, best value first (ties by table ids)."""
        if b.locked:
            return self.candidates(b, deadline)
        current = tuple(sorted(b.current)) if b.current is not None else None
        key = (b.party, b.preferred_zone, current)
        found = self._ranked.get(key)
        if found is not None:
            return found
        zone_key = (b.party, b.preferred_zone)
        ranked = self._zone_ranked.get(zone_key)
        if ranked is None:
            kept, _ = self._for_zone(b.party, b.preferred_zone, deadline)
            probe = Booking(0, b.party, 0.0, 0.0, preferred_zone=b.preferred_zone)
            ranked = sorted(kept, key=lambda r: (-value(probe, r, self.index), r))
            self._zone_ranked[zone_key] = ranked
        if current is not None:
            # Every other resource loses W_MOVE alike: their order stays, the current tables
            # move up to their place.
            kept = self.candidates(b, deadline)
            members = set(kept)
            score = (-value(b, current, self.index), current)
            placed = current not in members
            found = []
            for i, r in enumerate(ranked):
                if not i & 1023:
                    self.clock.check(deadline)
                if r == current or r not in members:
                    continue
                if not placed and (-value(b, r, self.index), r) > score:
                    found.append(current)
                    placed = True
                found.append(r)
            if not placed:
                found.append(current)
            ranked = found
        self._ranked[key] = ranked
        return ranked


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


# Share of the time limit kept back for building the answer after the blocks are solved.
TIME_MARGIN = 0.05
# Share of a block's time its MILP may use: the rest is for the heuristic when the MILP stops
# at its limit (HiGHS can stop with a poor incumbent that the heuristic beats).
MILP_SHARE = 0.8
# The least time a block gets while the call's time lasts, and the least worth starting HiGHS.
MIN_BLOCK = 0.05
MIN_MILP = 0.02


def _kept_tables(bookings: Sequence[Booking]) -> dict[int, Key | None]:
    """The plan that changes nothing: bookings that must be seated keep their tables."""
    return {
        b.id: tuple(sorted(b.current))
        if b.current is not None and (b.locked or b.must_seat)
        else None
        for b in bookings
    }


def solve(
    resources: Iterable[Resource],
    bookings: Sequence[Booking],
    *,
    time_limit: float | None = 2.0,
    method: str = "auto",
    interrupt: Callable[[], object] | None = None,
) -> Result:
    """Assign the bookings. ``method``: "auto" (MILP, greedy if unavailable), "milp", "greedy".

    The day is solved block by block (see ``blocks``), smallest first; each block gets a share
    of the remaining time in proportion to its bookings. Its MILP may use MILP_SHARE of that
    share. A block whose MILP finds no solution is planned by the heuristic (``_heuristic``);
    with "auto", so is a block whose MILP stops at the limit, and the better plan is kept.

    Every step stops at its deadline with what it has; a block reached after the time is up
    keeps its current tables (solver "current"). ``interrupt`` is called every
    INTERRUPT_EVERY seconds at most while the call works; what it raises ends the call."""
    if method not in ("auto", "milp", "greedy"):
        raise ValueError(f"unknown method {method!r}")
    started = time.perf_counter()
    milp_ok = method != "greedy"
    if milp_ok and bookings:
        # Imported first, outside the limit: the first call of a process spends a few tenths
        # of a second on it.
        try:
            import scipy.optimize  # noqa: F401
        except ImportError:
            if method == "milp":
                raise
            milp_ok = False
    deadline = None
    if time_limit is not None:
        deadline = time.perf_counter() + float(time_limit) * (1 - TIME_MARGIN)
    clock = Clock(interrupt)
    index = _index(resources, bookings)
    options = _Options(index, clock)
    pending = sorted(blocks(bookings), key=lambda block: (len(block), block[0].start))
    left = sum(len(block) for block in pending)
    assignment: dict[int, tuple[int, ...] | None] = {}
    solvers: set[str] = set()
    statuses: set[str] = set()
    stats: dict[str, float] = {"blocks": float(len(pending))}
    for block in pending:
        block = sorted(block, key=lambda b: b.id)
        block_deadline = milp_limit = grace = None
        first = None
        if deadline is not None:
            now = time.perf_counter()
            if clock.past(deadline):
                assignment.update(_kept_tables(block))
                solvers.add("current")
                statuses.add("time_limit")
                left -= len(block)
                continue
            share = max(MIN_BLOCK, (deadline - now) * len(block) / left)
            block_deadline = min(deadline, now + share)
            # The heuristic's first greedy pass comes first: a plan however short the time
            # (a few milliseconds for a hundred bookings). The MILP gets what is left of its
            # share after it. HiGHS often returns after its limit (its presolve does not
            # look at it): it is killed if it still runs three quarters into the time kept
            # for the rest of the heuristic.
            first = _greedy(
                index,
                block,
                GREEDY_ORDERS[0],
                options=options,
                clock=clock,
                deadline=block_deadline,
            )
            reserve = share * (1 - MILP_SHARE)
            milp_limit = block_deadline - time.perf_counter() - reserve
            grace = reserve * 0.75
        left -= len(block)
        part = None
        if milp_ok and (milp_limit is None or milp_limit >= MIN_MILP):
            try:
                part = _solve_milp(
                    index, block, milp_limit, options=options, clock=clock, grace=grace
                )
            except ImportError:
                if method == "milp":
                    raise
                milp_ok = False
            except OutOfTime:
                part = None
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
        found = _heuristic(index, block, block_deadline, options=options, clock=clock, first=first)
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
    index: dict[Key, Resource],
    bookings: Sequence[Booking],
    time_limit: float | None,
    *,
    options: _Options | None = None,
    clock: Clock | None = None,
    grace: float | None = None,
) -> Result | None:
    """The block's MILP: None when HiGHS finds no solution in time. ``time_limit`` covers
    building the model too (OutOfTime when that alone takes it); HiGHS is killed ``grace``
    seconds after it (never, without a limit)."""
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    clock = clock or Clock()
    options = options or _Options(index, clock)
    built = time.perf_counter()
    stop = None if time_limit is None else built + float(time_limit)
    # One variable per booking and candidate, with its cost; each booking on at most one
    # resource (a locked or must-seat booking on exactly one); the table rows below. Every
    # loop reads the clock: a large model is given up at ``stop``.
    variables: list[tuple[Booking, Key]] = []
    costs: list[float] = []
    rows: list[int] = []
    cols: list[int] = []
    row_lower: list[float] = []
    row = 0
    by_table: dict[int, list[int]] = {}
    for b in bookings:
        clock.check(stop)
        choices = options.candidates(b, stop)
        if not choices:
            continue
        for i, r in enumerate(choices):
            if i and not i & 4095:
                clock.check(stop)
            j = len(variables)
            variables.append((b, r))
            costs.append(-value(b, r, index))
            rows.append(row)
            cols.append(j)
            for t in r:
                by_table.setdefault(t, []).append(j)
        row_lower.append(1.0 if b.locked or b.must_seat else 0.0)
        row += 1
    if not variables:
        return Result({b.id: None for b in bookings}, 0.0, "milp", "optimal", 0.0)
    n = len(variables)
    cost = np.array(costs)
    lower = np.zeros(n)
    upper = np.ones(n)
    # Each table holds at most one booking at any time: for every table, one row per
    # maximal set of bookings overlapping at some booking's start (interval cliques), found
    # by a sweep over the starts.
    for t in sorted(by_table):
        clock.check(stop)
        js = sorted(by_table[t], key=lambda j: variables[j][0].start)
        seen: set[tuple[int, ...]] = set()
        active: list[int] = []
        nxt = 0
        for s in sorted({variables[j][0].start for j in js}):
            while nxt < len(js) and variables[js[nxt]][0].start <= s:
                active.append(js[nxt])
                nxt += 1
            active = [j for j in active if variables[j][0].end > s]
            clique = tuple(sorted(active))
            if len({variables[j][0].id for j in clique}) < 2 or clique in seen:
                continue
            seen.add(clique)
            clock.check(stop)
            for j in clique:
                rows.append(row)
                cols.append(j)
            row_lower.append(-np.inf)
            row += 1
    matrix = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(row, n)).tocsr()
    upper_rows = np.ones(row)
    settings: dict[str, float | bool] = {"disp": False}
    if stop is not None:
        clock.check(stop)
        settings["time_limit"] = max(0.05, stop - time.perf_counter())
    outcome = _run_milp(
        milp,
        {
            "c": cost,
            "integrality": np.ones(n),
            "bounds": Bounds(lower, upper),
            "constraints": LinearConstraint(matrix, np.array(row_lower), upper_rows),
            "options": settings,
        },
        clock,
        None if stop is None else stop + (grace or 0.0),
    )
    if outcome is None:
        return None
    status_code, chosen, gap = outcome
    if chosen is None:
        return None
    assignment: dict[int, tuple[int, ...] | None] = {b.id: None for b in bookings}
    for j in chosen:
        assignment[variables[j][0].id] = variables[j][1]
    if not feasible(assignment, bookings):
        return None
    status = {0: "optimal", 1: "time_limit"}.get(status_code, f"status_{status_code}")
    return Result(
        assignment,
        objective(assignment, bookings, index),
        "milp",
        status,
        0.0,
        {"variables": n, "constraints": row, "mip_gap": gap},
    )


def _milp_outcome(res: Any) -> tuple[int, list[int] | None, float]:
    """What the parent needs of scipy's result: status, the variables at 1, the gap."""
    # HiGHS returns 0.9999999 for 1: round, never compare to 1.
    chosen = None if res.x is None else [int(j) for j in (res.x > 0.5).nonzero()[0]]
    return int(res.status), chosen, float(getattr(res, "mip_gap", 0.0) or 0.0)


def _run_milp(
    milp: Callable[..., Any], problem: dict[str, Any], clock: Clock, kill_at: float | None
) -> tuple[int, list[int] | None, float] | None:
    """``milp(**problem)`` in a child process, so that it can be stopped at ``kill_at`` or when
    ``clock``'s interrupt raises (the child is killed, and None returned or the exception
    raised). Where there is no fork, HiGHS runs here, bounded by its own time limit only."""
    if not hasattr(os, "fork"):
        return _milp_outcome(milp(**problem))
    parent = os.getpid()
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:
        _milp_child(milp, problem, parent, read_end, write_end, kill_at)
    os.close(write_end)
    chunks: list[bytes] = []
    try:
        while True:
            wait = INTERRUPT_EVERY
            if kill_at is not None:
                wait = max(0.0, min(wait, kill_at - time.perf_counter()))
            ready, _, _ = select.select([read_end], [], [], wait)
            if ready:
                data = os.read(read_end, 1 << 16)
                if not data:
                    break
                chunks.append(data)
            elif clock.past(kill_at):
                return None
    finally:
        os.close(read_end)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    try:
        outcome: tuple[int, list[int] | None, float] = pickle.loads(b"".join(chunks))
    except Exception:
        return None  # the child died without an answer
    return outcome


def _milp_child(
    milp: Callable[..., Any],
    problem: dict[str, Any],
    parent: int,
    read_end: int,
    write_end: int,
    kill_at: float | None,
) -> NoReturn:
    """The child process: solve, write the outcome to the pipe, exit without running any
    exit handler of the parent (in PL/Python, a PostgreSQL backend's)."""
    code = 1
    try:
        os.close(read_end)
        # The backend's signal handlers and descriptors are not the child's: the default
        # action for signals (a shutdown signalling the backend's process group ends the
        # child too), only the pipe open.
        for name in ("SIGINT", "SIGTERM", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM"):
            signum = getattr(signal, name, None)
            if signum is not None:
                signal.signal(signum, signal.SIG_DFL)
        try:
            import ctypes

            # Linux: die with the parent (PR_SET_PDEATHSIG), even if it is killed.
            ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))
        except Exception:
            pass
        if os.getppid() != parent:
            os._exit(1)
        if kill_at is not None:
            import resource

            seconds = int(max(0.0, kill_at - time.perf_counter())) + 2
            resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))
        try:
            descriptors = [int(fd) for fd in os.listdir("/proc/self/fd")]
        except OSError:
            descriptors = []
        for fd in descriptors:
            if fd > 2 and fd != write_end:
                with contextlib.suppress(OSError):
                    os.close(fd)
        payload = memoryview(pickle.dumps(_milp_outcome(milp(**problem))))
        while payload:
            payload = payload[os.write(write_end, payload) :]
        code = 0
    except BaseException:
        pass
    finally:
        os._exit(code)


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
    index: dict[Key, Resource],
    bookings: Sequence[Booking],
    order: str = "start",
    *,
    options: _Options | None = None,
    clock: Clock | None = None,
    deadline: float | None = None,
) -> dict[int, tuple[int, ...] | None]:
    """Locked and must-seat bookings keep their current tables; the rest fill the gaps in the
    given order, each on its best-scoring free resource. Past ``deadline`` the bookings not
    reached yet stay unseated (the plan is still feasible)."""
    clock = clock or Clock()
    options = options or _Options(index, clock)
    assignment: dict[int, tuple[int, ...] | None] = {b.id: None for b in bookings}
    taken: dict[int, list[Booking]] = {}
    ordered = sorted(
        bookings,
        key=lambda b: (
            not (b.locked or (b.must_seat and b.current is not None)),
            *_order_key(order, b),
        ),
    )
    late = False
    for b in ordered:
        if (b.locked or b.must_seat) and b.current is not None:
            r = tuple(sorted(b.current))
            assignment[b.id] = r
            for t in r:
                taken.setdefault(t, []).append(b)
            continue
        if late or clock.past(deadline):
            late = True
            continue
        try:
            choices = options.ranked(b, deadline)
        except OutOfTime:
            late = True
            continue
        for i, r in enumerate(choices):
            if i and not i & 63 and clock.past(deadline):
                late = True
                break
            if _fits_now(b, r, taken):
                assignment[b.id] = r
                for t in r:
                    taken.setdefault(t, []).append(b)
                break
    return assignment


def _heuristic(
    index: dict[Key, Resource],
    bookings: Sequence[Booking],
    deadline: float | None,
    *,
    options: _Options | None = None,
    clock: Clock | None = None,
    first: dict[int, tuple[int, ...] | None] | None = None,
) -> dict[int, tuple[int, ...] | None]:
    """The greedy pass in each of GREEDY_ORDERS (``first``: the first order's, if done
    already), each improved by local search; the best feasible result (the first order's, at
    least: cut short at the deadline, it keeps the tables of the bookings that must be
    seated)."""
    clock = clock or Clock()
    options = options or _Options(index, clock)
    best: dict[int, tuple[int, ...] | None] | None = None
    best_score = float("-inf")
    for order in GREEDY_ORDERS:
        if order != GREEDY_ORDERS[0] and clock.past(deadline):
            break
        greedy = first if order == GREEDY_ORDERS[0] and first is not None else None
        if greedy is None:
            greedy = _greedy(
                index, bookings, order, options=options, clock=clock, deadline=deadline
            )
        found = _local_search(index, bookings, greedy, deadline, options=options, clock=clock)
        if order == GREEDY_ORDERS[0]:
            first = found
        score = objective(found, bookings, index)
        if feasible(found, bookings) and score > best_score + 1e-9:
            best, best_score = found, score
    # Only tables already overlapping (locked bookings) make every result infeasible: the
    # first is as good as any then.
    result = best or first
    assert result is not None
    return result


def _local_search(
    index: dict[Key, Resource],
    bookings: Sequence[Booking],
    assignment: dict[int, tuple[int, ...] | None],
    deadline: float | None = None,
    rounds: int = 8,
    *,
    options: _Options | None = None,
    clock: Clock | None = None,
) -> dict[int, tuple[int, ...] | None]:
    """Improve a feasible assignment, while it pays: seat each unseated booking on a free
    resource, or on a resource whose occupants are moved elsewhere or, when that gains
    covers, turned away (never a locked or must-seat booking). Stops at ``deadline``."""
    clock = clock or Clock()
    options = options or _Options(index, clock)
    by_id = {b.id: b for b in bookings}
    assignment = dict(assignment)
    occupants: dict[int, list[int]] = {}
    for key, resource in assignment.items():
        for t in resource or ():
            occupants.setdefault(t, []).append(key)

    def choices(b: Booking) -> list[Key]:
        try:
            return options.ranked(b, deadline)
        except OutOfTime:
            return []

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
        # Past the deadline, no option: the caller then undoes what it started.
        for i, r in enumerate(choices(b)):
            if not i & 63 and clock.past(deadline):
                return None
            if not blockers(b, r):
                return r
        return None

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
            if clock.past(deadline):
                return assignment
            if assignment[b.id] is not None or b.locked:
                continue
            free = free_option(b)
            if free is not None:
                place(b.id, free)
                improved = True
                continue
            for r in choices(b):
                if clock.past(deadline):
                    return assignment
                if try_seat(b, r):
                    improved = True
                    break
        if not improved:
            break
    return assignment


# ---------------------------------------------------------------------------------------
# Admission with flexible tables: make room for one new booking by moving confirmed ones.

# Levels of moves: the new booking may displace confirmed bookings, which may displace
# others, and so on, this many levels deep.
ROOM_DEPTH = 3
# Bookings displaced at most by one placement.
ROOM_MOVES = 2
# Placements that displace someone, tried at most per decision.
ROOM_TRIES = 100


def make_room(
    new: Booking,
    seated: Sequence[Booking],
    walls: Iterable[tuple[int, float, float]],
    choices: Callable[[Booking], Sequence[Key]],
    *,
    depth: int = ROOM_DEPTH,
    moves: int = ROOM_MOVES,
    tries: int = ROOM_TRIES,
    deadline: float | None = None,
    clock: Clock | None = None,
) -> dict[int, Key] | None:
    """Seat ``new`` on the first of ``choices(new)`` that is free, else on one whose occupants
    (at most ``moves``, none locked) can each be seated elsewhere in the same way, up to
    ``depth`` levels of moves. ``seated`` are the bookings on tables now (``current``; times
    include the buffer), ``walls`` what no move can clear (table, start, end: holds, blocks).

    Returns the new booking's resource and the new resource of every booking it moves (by
    booking id), or None when no such arrangement was found within ``tries`` displacing
    placements and the deadline: the caller then refuses, and nothing has changed."""
    clock = clock or Clock()
    by_id = {b.id: b for b in seated}
    by_id[new.id] = new
    where: dict[int, Key] = {}
    on: dict[int, set[int]] = {}
    fixed: dict[int, list[tuple[float, float]]] = {}
    for t, start, end in walls:
        fixed.setdefault(t, []).append((start, end))
    journal: list[tuple[bool, int, Key]] = []  # (put?, booking, resource), undone on failure
    left = [tries]

    def seat(key: int, resource: Key) -> None:
        where[key] = resource
        for t in resource:
            on.setdefault(t, set()).add(key)

    def unseat(key: int) -> Key:
        resource = where.pop(key)
        for t in resource:
            on[t].discard(key)
        return resource

    def rollback(mark: int) -> None:
        while len(journal) > mark:
            put, key, resource = journal.pop()
            if put:
                unseat(key)
            else:
                seat(key, resource)

    def walled(b: Booking, resource: Key) -> bool:
        return any(s < b.end and b.start < e for t in resource for s, e in fixed.get(t, ()))

    def occupants(b: Booking, resource: Key) -> set[int]:
        return {o for t in resource for o in on.get(t, ()) if _overlap(by_id[o], b)}

    def insert(b: Booking, level: int, frozen: frozenset[int]) -> bool:
        options = [r for r in choices(b) if not walled(b, r)]
        for r in options:
            if not occupants(b, r):
                seat(b.id, r)
                journal.append((True, b.id, r))
                return True
        if level == 0:
            return False
        for r in options:
            found = occupants(b, r)
            if len(found) > moves or found & frozen or any(by_id[o].locked for o in found):
                continue
            left[0] -= 1
            if left[0] < 0 or clock.past(deadline):
                raise OutOfTime
            mark = len(journal)
            for o in found:
                journal.append((False, o, unseat(o)))
            seat(b.id, r)
            journal.append((True, b.id, r))
            keep = frozen | found
            if all(
                insert(by_id[o], level - 1, keep)
                for o in sorted(found, key=lambda o: (-by_id[o].party, o))
            ):
                return True
            rollback(mark)
        return False

    for b in seated:
        if b.current is not None:
            seat(b.id, tuple(sorted(b.current)))
    # Fewest levels first: a plan that moves one booking is found before one that moves a
    # chain of them.
    try:
        if not any(insert(new, level, frozenset({new.id})) for level in range(depth + 1)):
            return None
    except OutOfTime:
        return None
    return {
        key: resource
        for key, resource in where.items()
        if key == new.id or resource != tuple(sorted(by_id[key].current or ()))
    }
