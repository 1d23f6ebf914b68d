"""Instant admission that protects the peak (`allocator bench instant`, `python -m bench
instant`): a pure-Python simulation study, no database.

Every request is answered at once, in arrival order: yes for the time asked, or no. Nothing
accepted is ever refused later. Restaurants are the quality benchmark's seeded layouts
(``bench/quality.py``: 20-30 tables of 2, 4 and 6, combinations of 2-3 adjacent tables); each
gets a sequence of days of requests from one of two demand models:

- ``quality``: the quality benchmark's generator (two thirds of parties of 1-2, a few up to
  12), about three requests a table, 30% at lunch, an overloaded dinner peaking at 19:30;
- ``heavy``: the same restaurants, volumes and times with a heavier tail of party sizes
  (1-2: 44%, 3-4: 30%, 5-12: 26%).

Policies. *Fixed tables*: the answer gives the table, and it never changes.

- ``first_fit``: the legacy planner, the smallest free single table that fits;
- ``greedy``: the engine's rule, the best free table or combination (the solver's score: least
  waste, fewest tables, the preferred zone), refused only when nothing is free.

*Flexible tables*: the answer gives the time; the tables of accepted bookings may be changed
until the day (the engine's optimize_day already moves confirmed bookings). A request is
accepted when it and every booking already accepted can be seated together: the best free
resource, else a repair that moves up to two accepted bookings, recursively (three levels,
a bounded search; never a double booking, and it may refuse what an exact check would seat).

- ``flexible``: accept whatever can still be seated so;
- ``bid_static``: bid prices per table and 15-minute slot, the LP relaxation duals of each of
  the restaurant's previous days' hindsight seating problems (in covers), averaged (as
  Bertsimas & Shioda); a party may take only resources whose table-slots' prices, times
  ``theta``, sum to at most its covers;
- ``bid_resolved``: the same rule with prices re-solved during the day: the duals of the LP
  of the bookings already accepted (which must stay seated) plus the demand still expected
  (the previous days' mean requests per party size and start, times the share of the day's
  requests not yet received, times ``forecast``). Lunch and dinner are separate LPs, each
  re-solved when one of its requests arrives ``resolve_every`` requests or more after its
  last solve.

Upper bound and diagnostics, with hindsight: ``optimum`` (the MILP on the whole day,
plpy_functions/solver.py) and ``oracle_fixed`` (exactly the requests the optimum seats, in
arrival order, on fixed tables by the engine's rule: what fixed tables cost even when
admission is perfect).

Calibration is nightly: before day ``d`` a restaurant's policies are calibrated on its days
``< d`` only; without history (a cold start) both bid policies are ``flexible``. The first
``warmup`` days of each restaurant only build history; the figures are over the later days.

Covers count guests seated at the time they asked; the peak is the quality benchmark's
(requests starting 19:00-21:00). Separately, with alternatives: half of the refused guests (a
seeded coin per request, the same for every policy) take the nearest start within 30 minutes
(15 before, 15 after, 30 before, 30 after; bookable starts of the same service) that the
policy accepts at that moment, if there is one.

Sensitivity: on every ``sensitivity_every``-th evaluated day, the bid policies run again with
their prices (``theta``) and, for ``bid_resolved``, the demand forecast scaled by each of
``scales``; covers are reported relative to the best scale.

The defaults (6 restaurants x 10 days per demand model, sensitivity on every 4th evaluated
day) keep a run at about three minutes on two cores; ``--restaurants 8 --days 14`` is the
larger study.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import itertools
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import quality
from bench.admission_rearrangement import turn

Key = tuple[int, ...]  # a resource: sorted table positions in ``Instance.tables``
Class = tuple[int, int, int]  # a request class: party, start, end of the blocked period

SLOT = 15  # minutes of a slot: starts, turn times and buffers are multiples of it
PEAK = quality.PEAK
MODELS = ("quality", "heavy")
FIXED = ("first_fit", "greedy")
FLEXIBLE = ("flexible", "bid_static", "bid_resolved")
ONLINE = (*FIXED, *FLEXIBLE)
BID = ("bid_static", "bid_resolved")
RECOMMENDED = "bid_resolved"
SCALES = (0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5)
ALTERNATIVE_OFFSETS = (-15, 15, -30, 30)  # nearest first, earlier first on ties
ALTERNATIVE_TAKE = 0.5  # the share of refused guests who take an alternative
REPAIR_DEPTH = 3  # levels of moves when a request finds nothing free (flexible tables)
REPAIR_MOVES = 2  # accepted bookings moved at most, at each level
REPAIR_BUDGET = 300  # resources tried with moves, at most, per request
TARGET_PEAK_GAIN_PCT = 15.0
TARGET_OPTIMUM_RATIO = 0.95
EPS = 1e-9

# The heavy-tail model's party sizes: 1-2 44%, 3-4 30%, 5-12 26%.
HEAVY_SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
HEAVY_WEIGHTS = (6, 38, 12, 18, 6, 7, 3, 4, 1.5, 2, 1, 1.5)


# ---------------------------------------------------------------------------------------
# Restaurants and days


@dataclass
class Restaurant:
    """A quality-benchmark layout and what the simulation needs of it: the solver's resources
    (tables and combinations) and the ranked candidates of each party size."""

    index: int
    instance: quality.Instance
    resources: dict[Key, Any]
    preferred_zone: int | None
    largest: int
    solver: Any
    ranked: dict[int, list[Key]] = field(default_factory=dict)

    @property
    def tables(self) -> list[quality.TableSpec]:
        return self.instance.tables

    def candidates(self, party: int) -> list[Key]:
        """The resources that may seat ``party`` (dominated ones dropped, as the solver does),
        best first by the solver's score: the engine's order."""
        if party not in self.ranked:
            solver = self.solver
            probe = solver.Booking(0, party, 0.0, 1.0, preferred_zone=self.preferred_zone)
            self.ranked[party] = sorted(
                solver._candidates(probe, self.resources),
                key=lambda r: (-solver.value(probe, r, self.resources), r),
            )
        return self.ranked[party]

    def singles(self, party: int) -> list[Key]:
        """Single tables that fit ``party``, smallest first, lowest position on ties: the
        legacy planner's order."""
        return [
            (i,)
            for _, i in sorted(
                (t.max_capacity, i)
                for i, t in enumerate(self.tables)
                if t.min_capacity <= party <= t.max_capacity
            )
        ]


def restaurant(solver: Any, seed: int, index: int, *, quick: bool = False) -> Restaurant:
    """The quality benchmark's restaurant ``index`` of ``seed`` (its layout; its requests are
    replaced by the days of ``day_requests``)."""
    instance = quality.generate(seed, index, quick=quick)
    instance.requests = []
    resources, _ = quality.solver_model(solver, instance, {}, frozenset())
    zone_ids = {z: i + 1 for i, z in enumerate(instance.zones)}
    return Restaurant(
        index,
        instance,
        {tuple(sorted(r.table_ids)): r for r in resources},
        zone_ids.get(instance.preferred_zone or ""),
        max(r.max_capacity for r in resources),
        solver,
    )


@dataclass
class Day:
    """One day of requests of a restaurant, in arrival order, with their turn times."""

    model: str
    restaurant: int
    day: int
    requests: list[quality.Request]
    durations: dict[int, int]
    buffer: int

    def end(self, r: quality.Request, start: int | None = None) -> int:
        """Where the blocked period (turn time and buffer) of ``r`` ends if it starts at
        ``start`` (its asked time by default)."""
        return (r.start if start is None else start) + self.durations[r.key] + self.buffer


def day_requests(seed: int, model: str, rest: Restaurant, day: int) -> Day:
    """Day ``day`` of ``rest`` under demand ``model``: the quality generator's volume (2.8-3.4
    requests a table), times and, for ``quality``, party sizes; for ``heavy``, the heavier
    tail. Parties larger than the largest resource are cut to it, as the generator does.
    Turn times are the restaurant defaults (bench/admission_rearrangement.py). Seeded."""
    rng = random.Random(f"allocator-bench-instant:{seed}:{model}:{rest.index}:{day}")
    sizes, weights = (
        (quality.PARTY_SIZES, quality.PARTY_WEIGHTS)
        if model == "quality"
        else (HEAVY_SIZES, HEAVY_WEIGHTS)
    )
    wanted = round(len(rest.tables) * rng.uniform(2.8, 3.4))
    requests = []
    for number in range(wanted):
        party = min(rng.choices(sizes, weights)[0], rest.largest)
        if rng.random() < quality.LUNCH_SHARE:
            start = rng.choices(quality.LUNCH_SLOTS, quality.LUNCH_WEIGHTS)[0]
        else:
            start = rng.choices(quality.DINNER_SLOTS, quality.DINNER_WEIGHTS)[0]
        requests.append(quality.Request(number, party, start))
    rng.shuffle(requests)  # arrival order is not start order
    return Day(
        model,
        rest.index,
        day,
        requests,
        {r.key: turn(r.party) for r in requests},
        rest.instance.buffer_minutes,
    )


def takes_alternative(seed: int, day: Day, key: int) -> bool:
    """Whether the guest of request ``key`` takes an offered alternative: a seeded coin, the
    same for every policy."""
    text = f"allocator-bench-instant-alt:{seed}:{day.model}:{day.restaurant}:{day.day}:{key}"
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < ALTERNATIVE_TAKE


def slots(start: int, end: int) -> range:
    """The 15-minute slots a blocked period [start, end) covers."""
    return range(start // SLOT, -(-end // SLOT))


def span_mask(start: int, end: int) -> int:
    """The slots of [start, end) as bits."""
    span = slots(start, end)
    return ((1 << len(span)) - 1) << span.start


def in_peak(start: int) -> bool:
    return PEAK[0] <= start < PEAK[1]


# ---------------------------------------------------------------------------------------
# The floor during a day


@dataclass(frozen=True)
class Seat:
    """A request seated on a resource for the blocked period [start, end)."""

    key: int
    party: int
    resource: Key
    start: int
    end: int
    asked: bool  # at the time asked (False: an alternative taken)


class Floor:
    """The accepted bookings of a day and their tables. ``insert`` seats a new booking on one
    of the resources it is allowed, moving accepted bookings when ``depth`` allows (flexible
    tables); a failed insert leaves the floor as it was (a journal of changes is undone)."""

    def __init__(self, rest: Restaurant) -> None:
        self.rest = rest
        self.where: dict[int, Key] = {}
        self.booking: dict[int, tuple[int, int, int, bool]] = {}  # party, start, end, asked
        self.on: list[set[int]] = [set() for _ in rest.tables]
        self.busy: list[int] = [0] * len(rest.tables)  # a bit per occupied slot
        self.journal: list[tuple[bool, int, Key]] = []  # (put?, key, resource)

    def conflicts(self, resource: Key, start: int, end: int, mask: int) -> set[int]:
        """The accepted bookings on ``resource``'s tables that overlap [start, end) (``mask``:
        its slots as bits)."""
        found = set()
        for t in resource:
            if not self.busy[t] & mask:
                continue
            for k in self.on[t]:
                _, s, e, _ = self.booking[k]
                if s < end and start < e:
                    found.add(k)
        return found

    def _seat(self, key: int, resource: Key) -> None:
        self.where[key] = resource
        _, start, end, _ = self.booking[key]
        mask = span_mask(start, end)
        for t in resource:
            self.on[t].add(key)
            self.busy[t] |= mask

    def _unseat(self, key: int) -> Key:
        resource = self.where.pop(key)
        _, start, end, _ = self.booking[key]
        mask = span_mask(start, end)
        for t in resource:
            self.on[t].discard(key)
            self.busy[t] &= ~mask
        return resource

    def _put(self, key: int, resource: Key) -> None:
        self._seat(key, resource)
        self.journal.append((True, key, resource))

    def _take(self, key: int) -> Key:
        resource = self._unseat(key)
        self.journal.append((False, key, resource))
        return resource

    def _rollback(self, mark: int) -> None:
        while len(self.journal) > mark:
            put, key, resource = self.journal.pop()
            if put:
                self._unseat(key)
            else:
                self._seat(key, resource)

    def insert(
        self,
        key: int,
        party: int,
        start: int,
        end: int,
        allowed: Sequence[Key],
        depth: int,
        *,
        asked: bool = True,
    ) -> bool:
        """Seat a new booking on the first free resource of ``allowed``, else (``depth`` > 0)
        on one whose occupants (at most REPAIR_MOVES) can be moved to other resources that fit
        them, recursively up to ``depth`` levels. False, and nothing changed, if neither."""
        self.booking[key] = (party, start, end, asked)
        self.journal.clear()
        if self._insert(key, allowed, depth, [REPAIR_BUDGET], frozenset({key})):
            self.journal.clear()
            return True
        self._rollback(0)
        del self.booking[key]
        return False

    def _insert(
        self,
        key: int,
        choices: Sequence[Key],
        depth: int,
        budget: list[int],
        frozen: frozenset[int],
    ) -> bool:
        _, start, end, _ = self.booking[key]
        mask = span_mask(start, end)
        for r in choices:
            if not any(self.busy[t] & mask for t in r):
                self._put(key, r)
                return True
        if depth == 0:
            return False
        for r in choices:
            found = self.conflicts(r, start, end, mask)
            if len(found) > REPAIR_MOVES or found & frozen:
                continue
            budget[0] -= 1
            if budget[0] < 0:
                return False
            mark = len(self.journal)
            for other in found:
                self._take(other)
            self._put(key, r)
            keep = frozen | found
            if all(
                self._insert(o, self.rest.candidates(self.booking[o][0]), depth - 1, budget, keep)
                for o in sorted(found, key=lambda o: (-self.booking[o][0], o))
            ):
                return True
            self._rollback(mark)
        return False

    def seats(self) -> list[Seat]:
        return [
            Seat(k, p, self.where[k], s, e, asked)
            for k, (p, s, e, asked) in sorted(self.booking.items())
        ]

    def accepted(self) -> collections.Counter[Class]:
        """The accepted bookings by class (party, start, end)."""
        return collections.Counter((p, s, e) for p, s, e, _ in self.booking.values())


# ---------------------------------------------------------------------------------------
# Calibration: each past day in hindsight, the prices


@dataclass
class Hindsight:
    """A past day seen whole: its requests, its optimum, its LP relaxation's table-slot duals."""

    day: Day
    optimum: list[Seat]
    duals: dict[tuple[int, int], float]  # (table, slot) -> dual, in covers
    lp_covers: float
    solve_ms: float
    status: str


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """HiGHS may print to file descriptor 1: send it to stderr, so that ``--json`` keeps
    stdout for the document."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def hindsight(rest: Restaurant, day: Day) -> Hindsight:
    """The day's optimum (the MILP, no time limit) and the duals of its LP relaxation."""
    solver = rest.solver
    instance = rest.instance
    instance.requests = day.requests
    try:
        resources, bookings = quality.solver_model(solver, instance, day.durations, frozenset())
        result = solver.solve(resources, bookings, time_limit=None, method="milp")
    finally:
        instance.requests = []
    by_key = {r.key: r for r in day.requests}
    optimum = [
        Seat(k, by_key[k].party, tuple(sorted(v)), by_key[k].start, day.end(by_key[k]), True)
        for k, v in sorted(result.assignment.items())
        if v is not None
    ]
    demand = collections.Counter((r.party, r.start, day.end(r)) for r in day.requests)
    lp = ForecastLP(rest)
    duals, lp_covers = lp.solve(collections.Counter(), {c: float(n) for c, n in demand.items()})
    return Hindsight(day, optimum, duals, lp_covers, float(result.solve_ms), str(result.status))


class ForecastLP:
    """The LP relaxation of a seating problem by request class: y[c, r] >= 0 parties of class
    c on resource r; for each class, accepted[c] <= sum_r y[c, r] <= accepted[c] + expected[c];
    each table at most once in each 15-minute slot; maximise covers. The matrix is built once
    for the classes known and rebuilt when a new class appears; a solve only changes bounds."""

    def __init__(self, rest: Restaurant, classes: Sequence[Class] = ()) -> None:
        self.rest = rest
        self.classes: dict[Class, int] = {}
        self.matrix: Any = None
        self.costs: Any = None
        self.table_rows: dict[tuple[int, int], int] = {}
        self._add(classes)

    def _add(self, classes: Sequence[Class]) -> None:
        new = [c for c in dict.fromkeys(classes) if c not in self.classes]
        if not new and self.matrix is not None:
            return
        for c in new:
            self.classes[c] = len(self.classes)
        self._build()

    def _build(self) -> None:
        import numpy as np
        from scipy.sparse import coo_matrix, vstack  # type: ignore[import-untyped]

        rows: list[int] = []
        cols: list[int] = []
        costs: list[float] = []
        table_rows: dict[tuple[int, int], int] = {}
        for (party, start, end), i in self.classes.items():
            span = slots(start, end)
            for resource in self.rest.candidates(party):
                j = len(costs)
                costs.append(-float(party))
                rows.append(i)
                cols.append(j)
                for t in resource:
                    for s in span:
                        rows.append(
                            len(self.classes) + table_rows.setdefault((t, s), len(table_rows))
                        )
                        cols.append(j)
        n = len(self.classes)
        shape = (n + len(table_rows), max(1, len(costs)))
        upper = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=shape).tocsr()
        # The lower bounds of the classes, as -sum_r y[c, r] <= -accepted[c].
        self.matrix = vstack([upper, -upper[:n]]).tocsr()
        self.costs = np.array(costs) if costs else np.zeros(1)
        self.table_rows = table_rows

    def solve(
        self, accepted: collections.Counter[Class], expected: dict[Class, float]
    ) -> tuple[dict[tuple[int, int], float], float]:
        """The table-slot duals (covers a table's slot is worth) and the LP's covers."""
        import numpy as np
        from scipy.optimize import linprog  # type: ignore[import-untyped]

        self._add([*accepted, *(c for c, q in expected.items() if q > 0)])
        n = len(self.classes)
        have = np.zeros(n)
        more = np.zeros(n)
        for c, count in accepted.items():
            have[self.classes[c]] = count
        for c, q in expected.items():
            if c in self.classes:
                more[self.classes[c]] = max(0.0, q)
        bounds = np.concatenate([have + more, np.ones(len(self.table_rows)), -have])
        res = linprog(
            self.costs,
            A_ub=self.matrix,
            b_ub=bounds,
            bounds=(0, None),
            method="highs-ds",
            options={"presolve": False},
        )
        if res.status != 0:
            raise RuntimeError(f"LP relaxation failed: {res.message}")
        marginals = -np.asarray(res.ineqlin.marginals)
        duals = {
            key: float(marginals[n + row])
            for key, row in self.table_rows.items()
            if marginals[n + row] > EPS
        }
        return duals, float(-res.fun)


@dataclass
class Calibration:
    """What a restaurant's previous days give the policies: the days used, the averaged
    per-day duals (``bid_static``), the mean requests per class and per day (``bid_resolved``)."""

    days: tuple[int, ...] = ()
    prices: dict[tuple[int, int], float] = field(default_factory=dict)
    demand: dict[Class, float] = field(default_factory=dict)
    requests_per_day: float = 0.0


def calibrate(rest: Restaurant, history: Sequence[Hindsight], day: int) -> Calibration:
    """The calibration for day ``day`` from the restaurant's previous days ``history``: every
    one must be before ``day``. No history: the defaults (no prices, no demand)."""
    late = [h.day.day for h in history if h.day.day >= day]
    if late:
        raise ValueError(f"calibration for day {day} given days {late}")
    if not history:
        return Calibration()
    n = len(history)
    prices: dict[tuple[int, int], float] = collections.defaultdict(float)
    demand: dict[Class, float] = collections.defaultdict(float)
    for h in history:
        for key, value in h.duals.items():
            prices[key] += value / n
        for r in h.day.requests:
            demand[r.party, r.start, h.day.end(r)] += 1.0 / n
    return Calibration(
        tuple(h.day.day for h in history),
        dict(prices),
        dict(demand),
        statistics.fmean(len(h.day.requests) for h in history),
    )


# ---------------------------------------------------------------------------------------
# Policies


class Policy:
    """Answers a day's requests one at a time: ``allowed`` gives the resources a request may
    take (empty: refused), ``depth`` how far accepted bookings may be moved to seat it."""

    depth = 0

    def start_day(self, day: Day) -> None:
        """Called before the day's first request."""

    def allowed(self, floor: Floor, arrival: int, party: int, start: int, end: int) -> list[Key]:
        raise NotImplementedError


class FirstFit(Policy):
    def allowed(self, floor: Floor, arrival: int, party: int, start: int, end: int) -> list[Key]:
        return floor.rest.singles(party)


class Greedy(Policy):
    def allowed(self, floor: Floor, arrival: int, party: int, start: int, end: int) -> list[Key]:
        return floor.rest.candidates(party)


class Flexible(Greedy):
    depth = REPAIR_DEPTH


class Oracle(Greedy):
    """Diagnostic: only the requests ``keys`` (the optimum's), fixed tables."""

    def __init__(self, keys: set[int]) -> None:
        self.keys = keys
        self.order: list[int] = []

    def start_day(self, day: Day) -> None:
        self.order = [r.key for r in day.requests]

    def allowed(self, floor: Floor, arrival: int, party: int, start: int, end: int) -> list[Key]:
        return floor.rest.candidates(party) if self.order[arrival] in self.keys else []


class BidPrice(Policy):
    """A party may take the resources whose table-slot prices, times ``theta``, sum to at most
    its covers (the engine's order among them)."""

    depth = REPAIR_DEPTH

    def __init__(self, prices: dict[tuple[int, int], float], theta: float) -> None:
        self.prices = prices
        self.theta = theta

    def current(self, floor: Floor, arrival: int, start: int) -> dict[tuple[int, int], float]:
        return self.prices

    def allowed(self, floor: Floor, arrival: int, party: int, start: int, end: int) -> list[Key]:
        prices = self.current(floor, arrival, start)
        span = slots(start, end)
        return [
            r
            for r in floor.rest.candidates(party)
            if party >= self.theta * sum(prices.get((t, s), 0.0) for t in r for s in span) - EPS
        ]


class ResolvedBidPrice(BidPrice):
    """Bid prices re-solved during the day: the duals of ``ForecastLP`` for the bookings
    accepted so far and the demand still expected (the calibration's mean demand, times the
    share of a day's requests not received yet, times ``forecast``). Each service (lunch,
    dinner) is its own LP, re-solved when one of its requests arrives ``every`` requests or
    more after its last solve."""

    def __init__(
        self,
        lps: dict[int, ForecastLP],
        calibration: Calibration,
        forecast: float,
        theta: float,
        every: int,
    ) -> None:
        super().__init__({}, theta)
        self.lps = lps
        self.calibration = calibration
        self.forecast = forecast
        self.every = every
        self.solves = 0
        self.block_prices: dict[int, dict[tuple[int, int], float]] = {}
        self.solved_at: dict[int, int] = {}

    def start_day(self, day: Day) -> None:
        self.block_prices = {}
        self.solved_at = {}

    def current(self, floor: Floor, arrival: int, start: int) -> dict[tuple[int, int], float]:
        cal = self.calibration
        block = service(start)
        if not cal.demand or block not in self.lps:
            return {}
        last = self.solved_at.get(block)
        if last is None or arrival - last >= self.every:
            share = max(0.0, 1.0 - arrival / cal.requests_per_day) * self.forecast
            expected = {c: q * share for c, q in cal.demand.items() if service(c[1]) == block}
            accepted = collections.Counter(
                {c: n for c, n in floor.accepted().items() if service(c[1]) == block}
            )
            self.block_prices[block], _ = self.lps[block].solve(accepted, expected)
            self.solved_at[block] = arrival
            self.solves += 1
        return self.block_prices[block]


def service(start: int) -> int:
    """The service a start falls in: 0 lunch, 1 dinner (their blocked periods never overlap,
    so each is an LP of its own)."""
    return 0 if start < 16 * 60 else 1


def forecast_lps(rest: Restaurant, calibration: Calibration) -> dict[int, ForecastLP]:
    """An LP per service, for the classes of the calibration's demand (shared by a day's
    runs: a solve changes only bounds, and adds classes as they appear)."""
    return {
        block: ForecastLP(rest, [c for c in calibration.demand if service(c[1]) == block])
        for block in (0, 1)
    }


def simulate(
    rest: Restaurant, day: Day, policy: Policy, *, alternatives: bool = False, seed: int = 0
) -> list[Seat]:
    """The day's requests answered in arrival order by ``policy``; with ``alternatives``, a
    refused guest who takes one (``takes_alternative``) is seated at the nearest start within
    30 minutes the policy accepts, if any. The seats at the end of the day (flexible tables:
    the tables may differ from those of the answer)."""
    floor = Floor(rest)
    policy.start_day(day)
    for arrival, r in enumerate(day.requests):
        end = day.end(r)
        allowed = policy.allowed(floor, arrival, r.party, r.start, end)
        if allowed and floor.insert(r.key, r.party, r.start, end, allowed, policy.depth):
            continue
        if not alternatives or not takes_alternative(seed, day, r.key):
            continue
        bookable = quality.LUNCH_SLOTS if r.start < 16 * 60 else quality.DINNER_SLOTS
        for offset in ALTERNATIVE_OFFSETS:
            start = r.start + offset
            if start not in bookable:
                continue
            end = day.end(r, start)
            allowed = policy.allowed(floor, arrival, r.party, start, end)
            if allowed and floor.insert(
                r.key, r.party, start, end, allowed, policy.depth, asked=False
            ):
                break
    return floor.seats()


# ---------------------------------------------------------------------------------------
# Checks and figures


def violations(rest: Restaurant, day: Day, seats: Sequence[Seat]) -> list[str]:
    """What is wrong with a day's seats: a request seated twice or unknown, a resource that is
    not a table or combination fitting the party, a period other than the request's turn,
    a table given to two overlapping periods."""
    problems = []
    by_key = {r.key: r for r in day.requests}
    seen: set[int] = set()
    on_table: dict[int, list[Seat]] = collections.defaultdict(list)
    for seat in seats:
        r = by_key.get(seat.key)
        if r is None or seat.key in seen:
            problems.append(f"request {seat.key} unknown or seated twice")
            continue
        seen.add(seat.key)
        res = rest.resources.get(seat.resource)
        if res is None or not res.min_capacity <= r.party <= res.max_capacity:
            problems.append(f"request {seat.key} (party {r.party}) on {seat.resource}")
        if seat.end != day.end(r, seat.start) or (seat.asked and seat.start != r.start):
            problems.append(f"request {seat.key}: period {seat.start}-{seat.end}")
        if abs(seat.start - r.start) > 30:
            problems.append(f"request {seat.key}: alternative {seat.start} too far")
        for t in seat.resource:
            on_table[t].append(seat)
    for t, items in on_table.items():
        items.sort(key=lambda x: (x.start, x.key))
        for a, b in itertools.pairwise(items):
            if b.start < a.end:
                problems.append(f"table {t}: requests {a.key} and {b.key} overlap")
    return problems


def figures(seats: Sequence[Seat]) -> dict[str, int]:
    """Parties and covers seated at the time asked, those of the peak, and the alternatives."""
    asked = [s for s in seats if s.asked]
    return {
        "parties": len(asked),
        "covers": sum(s.party for s in asked),
        "peak_covers": sum(s.party for s in asked if in_peak(s.start)),
        "alternative_parties": len(seats) - len(asked),
        "alternative_covers": sum(s.party for s in seats if not s.asked),
    }


# ---------------------------------------------------------------------------------------
# One restaurant's sequence of days


@dataclass
class Settings:
    """A run's settings (bench/cli.py: ``instant``)."""

    restaurants: int = 6
    days: int = 10
    warmup: int = 2
    seed: int = 1
    models: tuple[str, ...] = MODELS
    theta: float = 1.0
    forecast: float = 1.0
    resolve_every: int = 10
    scales: tuple[float, ...] = SCALES
    sensitivity_every: int = 4  # every n-th evaluated day has the sensitivity runs; 0: none
    workers: int = 2
    quick: bool = False
    json: bool = False
    seatings: bool = False


def policies(
    args: Settings, rest: Restaurant, calibration: Calibration, lps: dict[int, ForecastLP]
) -> dict[str, Policy]:
    return {
        "first_fit": FirstFit(),
        "greedy": Greedy(),
        "flexible": Flexible(),
        "bid_static": BidPrice(calibration.prices, args.theta),
        "bid_resolved": ResolvedBidPrice(
            lps, calibration, args.forecast, args.theta, args.resolve_every
        ),
    }


def run_restaurant(args: Settings, model: str, index: int) -> dict[str, Any]:
    """Every day of one restaurant under one demand model: before each day, calibrate on the
    days before it; answer its requests with each policy; solve it in hindsight. The figures
    of the days from ``warmup`` on."""
    with _quiet_stdout():
        solver = quality.load_solver()
        rest = restaurant(solver, args.seed, index, quick=args.quick)
        history: list[Hindsight] = []
        rows = []
        started = time.perf_counter()
        for d in range(args.days):
            day = day_requests(args.seed, model, rest, d)
            calibration = calibrate(rest, list(history), d)
            if d >= args.warmup:
                rows.append(evaluate(args, rest, day, calibration))
            history.append(hindsight(rest, day))
            if d >= args.warmup:
                add_optimum(args, rest, day, rows[-1], history[-1])
    return {
        "model": model,
        "restaurant": index,
        "tables": len(rest.tables),
        "seats": sum(t.max_capacity for t in rest.tables),
        "combinations": len(rest.resources) - len(rest.tables),
        "max_combination_size": rest.instance.max_combination_size,
        "buffer_minutes": rest.instance.buffer_minutes,
        "elapsed_s": round(time.perf_counter() - started, 2),
        "days": rows,
    }


def evaluate(
    args: Settings, rest: Restaurant, day: Day, calibration: Calibration
) -> dict[str, Any]:
    """One day answered by every policy, at the time asked and with alternatives, and the
    sensitivity runs; the checks. Only the calibration (earlier days) and the day's requests,
    one at a time, are seen: the day's hindsight comes after (``add_optimum``)."""
    lps = forecast_lps(rest, calibration)
    row: dict[str, Any] = {
        "day": day.day,
        "calibrated_on": list(calibration.days),
        "requests": len(day.requests),
        "demand": {
            "covers": sum(r.party for r in day.requests),
            "peak_covers": sum(r.party for r in day.requests if in_peak(r.start)),
        },
    }
    problems: list[str] = []
    seatings: dict[str, Any] = {}
    for name, policy in policies(args, rest, calibration, lps).items():
        for alternatives in (False, True):
            label = f"{name}_alternatives" if alternatives else name
            seats = simulate(rest, day, policy, alternatives=alternatives, seed=args.seed)
            problems += [f"{label}: {p}" for p in violations(rest, day, seats)]
            if not alternatives and any(not s.asked for s in seats):
                problems.append(f"{name}: an alternative without alternatives")
            row[label] = figures(seats)
            if args.seatings:
                seatings[label] = [[s.key, list(s.resource), s.start, s.end] for s in seats]
        if isinstance(policy, ResolvedBidPrice):
            row["resolves"] = policy.solves
    if args.seatings:
        row["seatings"] = seatings
    if args.sensitivity_every and (day.day - args.warmup) % args.sensitivity_every == 0:
        row["sensitivity"] = sensitivity(args, rest, day, calibration, lps, row)
    row["problems"] = problems
    return row


def sensitivity(
    args: Settings,
    rest: Restaurant,
    day: Day,
    calibration: Calibration,
    lps: dict[int, ForecastLP],
    row: dict[str, Any],
) -> dict[str, dict[str, dict[str, int]]]:
    """Each bid policy's figures with a parameter scaled (times the run's value): the prices
    (``theta``) of ``bid_static`` and ``bid_resolved``, the demand forecast of
    ``bid_resolved``. Scale 1 is the day's main run."""
    runs: dict[str, tuple[str, Callable[[float], Policy]]] = {
        "bid_static.theta": (
            "bid_static",
            lambda x: BidPrice(calibration.prices, args.theta * x),
        ),
        "bid_resolved.theta": (
            "bid_resolved",
            lambda x: ResolvedBidPrice(
                lps, calibration, args.forecast, args.theta * x, args.resolve_every
            ),
        ),
        "bid_resolved.forecast": (
            "bid_resolved",
            lambda x: ResolvedBidPrice(
                lps, calibration, args.forecast * x, args.theta, args.resolve_every
            ),
        ),
    }
    return {
        name: {
            str(x): row[main] if x == 1.0 else figures(simulate(rest, day, make(x)))
            for x in args.scales
        }
        for name, (main, make) in runs.items()
    }


def add_optimum(
    args: Settings, rest: Restaurant, day: Day, row: dict[str, Any], seen: Hindsight
) -> None:
    """The hindsight figures of an evaluated day, and the checks that need them."""
    row["optimum"] = figures(seen.optimum)
    row["optimum_run"] = {"status": seen.status, "solve_ms": seen.solve_ms, "lp": seen.lp_covers}
    oracle = simulate(rest, day, Oracle({s.key for s in seen.optimum}))
    row["oracle_fixed"] = figures(oracle)
    problems = row["problems"]
    problems += [f"optimum: {p}" for p in violations(rest, day, seen.optimum)]
    problems += [f"oracle_fixed: {p}" for p in violations(rest, day, oracle)]
    if seen.status != "optimal":
        problems.append(f"the hindsight MILP is {seen.status}, not optimal")
    best = row["optimum"]["covers"]
    for name in (*ONLINE, "oracle_fixed"):
        if row[name]["covers"] > best:
            problems.append(f"{name} seats {row[name]['covers']} covers, the optimum {best}")
    for runs in row.get("sensitivity", {}).values():
        for x, fig in runs.items():
            if fig["covers"] > best:
                problems.append(f"sensitivity {x}: {fig['covers']} covers, the optimum {best}")
    if args.seatings:
        row["seatings"]["optimum"] = [
            [s.key, list(s.resource), s.start, s.end] for s in seen.optimum
        ]


# ---------------------------------------------------------------------------------------
# Aggregates


def _pct(new: float, old: float) -> float:
    return (new - old) / old * 100.0 if old > 0 else 0.0


def aggregate(days: Sequence[dict[str, Any]], scales: Sequence[float]) -> dict[str, Any]:
    """One demand model's figures over its evaluated days."""
    names = (*ONLINE, "oracle_fixed", "optimum")
    total = {n: sum(d[n]["covers"] for d in days) for n in names}
    peak = {n: sum(d[n]["peak_covers"] for d in days) for n in names}
    ratios = {n: [d[n]["covers"] / max(1, d["optimum"]["covers"]) for d in days] for n in names}
    policies_out: dict[str, Any] = {}
    for n in names:
        entry: dict[str, Any] = {
            "covers": total[n],
            "mean_covers": total[n] / len(days),
            "parties": sum(d[n]["parties"] for d in days),
            "peak_covers": peak[n],
            "peak_gain_over_first_fit_pct": _pct(peak[n], peak["first_fit"]),
            "gain_over_first_fit_pct": _pct(total[n], total["first_fit"]),
            "ratio_optimum_mean": statistics.fmean(ratios[n]),
            "ratio_optimum_min": min(ratios[n]),
            "days_below_95": sum(1 for x in ratios[n] if x < TARGET_OPTIMUM_RATIO),
        }
        if n in ONLINE:
            alt = [d[f"{n}_alternatives"] for d in days]
            covers = sum(a["covers"] + a["alternative_covers"] for a in alt)
            ff = sum(
                a["covers"] + a["alternative_covers"]
                for a in (d["first_fit_alternatives"] for d in days)
            )
            entry["alternatives"] = {
                "covers": covers,
                "mean_covers": covers / len(days),
                "at_asked_time": sum(a["covers"] for a in alt),
                "alternative_covers": sum(a["alternative_covers"] for a in alt),
                "alternative_parties": sum(a["alternative_parties"] for a in alt),
                "gain_over_asked_only_pct": _pct(covers, total[n]),
                "gain_over_first_fit_pct": _pct(covers, ff),
                "ratio_optimum_mean": statistics.fmean(
                    (a["covers"] + a["alternative_covers"]) / max(1, d["optimum"]["covers"])
                    for a, d in zip(alt, days, strict=True)
                ),
            }
        policies_out[n] = entry
    result: dict[str, Any] = {
        "days": len(days),
        "demand_covers": sum(d["demand"]["covers"] for d in days),
        "demand_peak_covers": sum(d["demand"]["peak_covers"] for d in days),
        "policies": policies_out,
        "targets": {
            n: {
                "peak_gain_over_first_fit_pct": policies_out[n]["peak_gain_over_first_fit_pct"],
                "peak_met": policies_out[n]["peak_gain_over_first_fit_pct"] >= TARGET_PEAK_GAIN_PCT,
                "ratio_optimum_mean": policies_out[n]["ratio_optimum_mean"],
                "optimum_met": policies_out[n]["ratio_optimum_mean"] >= TARGET_OPTIMUM_RATIO,
            }
            for n in ONLINE
        },
    }
    with_sensitivity = [d for d in days if "sensitivity" in d]
    if with_sensitivity:
        out: dict[str, Any] = {}
        for run in with_sensitivity[0]["sensitivity"]:
            covers = {
                str(x): sum(d["sensitivity"][run][str(x)]["covers"] for d in with_sensitivity)
                for x in scales
            }
            best = max(covers.values())
            ff_peak = sum(d["first_fit"]["peak_covers"] for d in with_sensitivity)
            out[run] = {
                str(x): {
                    "covers": covers[str(x)],
                    "relative_to_best": covers[str(x)] / best if best else 1.0,
                    "ratio_optimum_mean": statistics.fmean(
                        d["sensitivity"][run][str(x)]["covers"] / max(1, d["optimum"]["covers"])
                        for d in with_sensitivity
                    ),
                    "peak_gain_over_first_fit_pct": _pct(
                        sum(d["sensitivity"][run][str(x)]["peak_covers"] for d in with_sensitivity),
                        ff_peak,
                    ),
                }
                for x in scales
            }
        result["sensitivity"] = out
        result["sensitivity_days"] = len(with_sensitivity)
    return result


# ---------------------------------------------------------------------------------------
# Output


LABELS = {
    "first_fit": "first-fit (fixed)",
    "greedy": "greedy = engine (fixed)",
    "flexible": "flexible, accept if fits",
    "bid_static": "bid prices, static",
    "bid_resolved": "bid prices, re-solved",
    "oracle_fixed": "oracle admission (fixed)",
    "optimum": "hindsight optimum",
}


def print_report(console: Console, report: dict[str, Any]) -> None:
    """Per demand model: the policies, the sensitivity, the targets of the recommended policy."""
    params = report["params"]
    for model, agg in report["models"].items():
        grid = Table(
            title=f"{model} demand: {agg['days']} days ({params['restaurants']} restaurants x "
            f"{params['days'] - params['warmup']} evaluated days); covers at the time asked; "
            f"peak {report['peak_window']}"
        )
        for column in (
            "policy",
            "covers/day",
            "peak covers",
            "peak vs first-fit",
            "of optimum",
            "min",
            "days < 95%",
            "with alt./day",
            "alt. vs first-fit",
        ):
            grid.add_column(column, justify="left" if column == "policy" else "right")
        for name, p in agg["policies"].items():
            alt = p.get("alternatives")
            target = agg["targets"].get(name)
            peak = f"{p['peak_gain_over_first_fit_pct']:+.1f}%"
            ratio = f"{p['ratio_optimum_mean']:.1%}"
            if target:
                peak = _mark(target["peak_met"], peak)
                ratio = _mark(target["optimum_met"], ratio)
            grid.add_row(
                LABELS[name],
                f"{p['mean_covers']:.1f}",
                str(p["peak_covers"]),
                peak,
                ratio,
                f"{p['ratio_optimum_min']:.1%}",
                str(p["days_below_95"]),
                f"{alt['mean_covers']:.1f}" if alt else "",
                f"{alt['gain_over_first_fit_pct']:+.1f}%" if alt else "",
            )
        console.print(grid)
        if "sensitivity" in agg:
            sens = Table(
                title=f"{model} demand: sensitivity on {agg['sensitivity_days']} days, "
                "parameter times each scale"
            )
            sens.add_column("parameter")
            sens.add_column("figure")
            scales = params["scales"]
            for x in scales:
                sens.add_column(f"x{x:g}", justify="right")
            for run, values in agg["sensitivity"].items():
                for figure, key, text in (
                    ("covers / best scale", "relative_to_best", "{:.1%}"),
                    ("of optimum", "ratio_optimum_mean", "{:.1%}"),
                    ("peak vs first-fit", "peak_gain_over_first_fit_pct", "{:+.1f}%"),
                ):
                    sens.add_row(
                        run if key == "relative_to_best" else "",
                        figure,
                        *(text.format(values[str(x)][key]) for x in scales),
                    )
            console.print(sens)
        target = agg["targets"][RECOMMENDED]
        optimum_peak = agg["policies"]["optimum"]["peak_gain_over_first_fit_pct"]
        console.print(
            f"{model}: {RECOMMENDED} seats "
            + _mark(
                target["peak_met"],
                f"{target['peak_gain_over_first_fit_pct']:+.1f}% peak covers over first-fit",
            )
            + f" (target +{TARGET_PEAK_GAIN_PCT:.0f}%; the hindsight optimum {optimum_peak:+.1f}%)"
            + " and "
            + _mark(target["optimum_met"], f"{target['ratio_optimum_mean']:.1%} of the optimum")
            + f" on average (target {TARGET_OPTIMUM_RATIO:.0%})."
        )
    console.print(
        f"With alternatives: {ALTERNATIVE_TAKE:.0%} of refused guests take the nearest start "
        "within 30 minutes that the policy accepts then (15 min before, after, 30 before, after)."
    )
    for problem in report["checks"]:
        console.print(f"[red]check failed[/red]: {problem}")


def _mark(ok: bool, text: str) -> str:
    return f"[green]{text}[/green]" if ok else f"[red]{text}[/red]"


# ---------------------------------------------------------------------------------------
# Entry point


def study(args: Settings) -> dict[str, Any]:
    """Run every (demand model, restaurant) and build the report."""
    started = time.perf_counter()
    jobs = [(m, i) for m in args.models for i in range(args.restaurants)]
    if args.workers > 1 and len(jobs) > 1:
        # The largest restaurants first: the two workers then finish close together.
        size = {i: len(quality.generate(args.seed, i, quick=args.quick).tables) for _, i in jobs}
        jobs.sort(key=lambda job: -size[job[1]])
        import multiprocessing

        with ProcessPoolExecutor(
            max_workers=args.workers, mp_context=multiprocessing.get_context("fork")
        ) as pool:
            runs = list(
                pool.map(
                    run_restaurant,
                    [args] * len(jobs),
                    [m for m, _ in jobs],
                    [i for _, i in jobs],
                )
            )
    else:
        runs = [run_restaurant(args, m, i) for m, i in jobs]
    models = {}
    checks = []
    for model in args.models:
        rows = [r for r in runs if r["model"] == model]
        days = [d for r in rows for d in r["days"]]
        for r in rows:
            for d in r["days"]:
                checks += [
                    f"{model} restaurant {r['restaurant']} day {d['day']}: {p}"
                    for p in d["problems"]
                ]
        models[model] = aggregate(days, args.scales)
    return {
        "benchmark": "instant",
        "created_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "params": {
            "restaurants": args.restaurants,
            "days": args.days,
            "warmup": args.warmup,
            "seed": args.seed,
            "models": list(args.models),
            "theta": args.theta,
            "forecast": args.forecast,
            "resolve_every": args.resolve_every,
            "scales": list(args.scales),
            "sensitivity_every": args.sensitivity_every,
            "quick": args.quick,
            "workers": args.workers,
            "alternative_take": ALTERNATIVE_TAKE,
            "alternative_offsets": list(ALTERNATIVE_OFFSETS),
            "repair": {"depth": REPAIR_DEPTH, "moves": REPAIR_MOVES, "budget": REPAIR_BUDGET},
        },
        "peak_window": f"{PEAK[0] // 60:02d}:{PEAK[0] % 60:02d}-{PEAK[1] // 60:02d}:"
        f"{PEAK[1] % 60:02d}",
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "scipy": metadata.version("scipy"),
            "numpy": metadata.version("numpy"),
        },
        "models": models,
        "restaurants": runs,
        "checks": checks,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def run(args: Settings) -> int:
    """Run the study and print the tables (``--json``: the JSON document on stdout, the
    tables on stderr); 1 if a check failed."""
    console = Console(stderr=args.json)
    if not console.is_terminal:
        console = Console(stderr=args.json, width=160)
    # No live status spinner: its thread would be running when the workers are forked.
    console.print(
        f"simulating {len(args.models)} demand model(s) x {args.restaurants} restaurants x "
        f"{args.days} days on {args.workers} process(es)"
    )
    report = study(args)
    print_report(console, report)
    console.print(f"elapsed {report['elapsed_s']:.1f} s")
    if args.json:
        print(json.dumps(report, indent=1))
    return 1 if report["checks"] else 0
