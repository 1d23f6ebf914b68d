"""Seated covers on realistic days: legacy first-fit, the online engine, optimize_day and the
optimum, compared instance by instance (`python -m bench quality`, `allocator bench quality`).

Each instance is a seeded restaurant (20-30 tables of 2, 4 and 6 seats, adjacency so that
tables combine) and one local day of bookings with a lunch service and a dinner service whose
peak asks for more than the room holds. The bookings arrive in random order, not by start time.

- legacy: the baseline planner simulated in Python (smallest free single table that fits,
  lowest id on ties, no combinations), in arrival order;
- engine: the real database: ``create_booking`` then ``process_booking`` for every arrival;
- optimize_day: ``allocator.optimize_day`` after the engine (it writes nothing; the bookings
  the engine confirmed may move but stay seated);
- committed optimum: ``plpy_functions/solver.py`` (MILP, no time limit) on the same problem
  optimize_day solves after the engine: the engine's confirmed bookings must stay seated;
- pooled: the same requests in a restaurant with pooling on: ``process_booking`` defers every
  booking to its day's cut-off, then ``optimize_day`` plans the day and its plan is applied
  as the nightly run applies it; the covers counted are the confirmed rows;
- optimum: the MILP without time limit on the whole day in hindsight (nothing committed):
  the upper bound, and the very problem the pooled run solves under its time limit;
- fallback: the greedy pass and local search (what runs without SciPy) on that same problem.

optimize_day is judged against the optimum of the problem it is given: pooled against the
optimum, after the engine against the committed optimum. The distance from the committed
optimum to the optimum is what confirming online costs, and is reported on its own.

A last, larger instance times ``optimize_day`` after the engine and pooled (medians of three
runs).
"""

from __future__ import annotations

import collections
import importlib
import itertools
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from rich.console import Console
from rich.table import Table

from control.cluster import project_root
from control.db import database_url
from control.display import literal
from control.queries import query

TIMEZONE = "Europe/Rome"
WORKER = "bench"
PEAK = (19 * 60, 21 * 60)  # evening peak: bookings starting 19:00 <= start < 21:00 local
TARGET_MEAN_RATIO = 0.99
TARGET_LOW_RATIO = 0.97
TARGET_LOW_SHARE = 0.02
TARGET_SOLVE_MS = 2000.0

# Party sizes and their weights: two thirds are 1-2, some 3-8, a few 10 and 12.
PARTY_SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 10, 12)
PARTY_WEIGHTS = (9, 55, 9, 13, 4, 4, 1.5, 2, 1, 0.5)
# Start slots (minutes after midnight) and weights: lunch 12:00-14:00, dinner 18:00-22:00
# peaking at 19:30-20:15.
LUNCH_SLOTS = tuple(12 * 60 + 15 * i for i in range(9))
LUNCH_WEIGHTS = (2, 3, 4, 5, 5, 4, 3, 2, 1)
DINNER_SLOTS = tuple(18 * 60 + 15 * i for i in range(17))
DINNER_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 8, 8, 7, 6, 5, 4, 3, 2, 1, 1)
LUNCH_SHARE = 0.3


@dataclass(frozen=True)
class TableSpec:
    """A table of a generated layout."""

    label: str
    zone: str
    min_capacity: int
    max_capacity: int
    combinable: bool = True


@dataclass(frozen=True)
class Request:
    """A booking request: ``key`` numbers it in generation order, ``start`` is local minutes."""

    key: int
    party: int
    start: int


@dataclass
class Instance:
    """A restaurant layout and one day of booking requests, in arrival order."""

    name: str
    seed: str
    buffer_minutes: int
    max_combination_size: int
    preferred_zone: str | None
    zones: list[str]
    tables: list[TableSpec]
    adjacency: list[tuple[str, str]]
    requests: list[Request]
    strategy_weights: dict[str, float] | None = None

    def layout(self, pooling: bool = False) -> dict[str, Any]:
        """The instance as an ``import_layout`` document (``pooling``: the restaurant pools
        bookings until their day's cut-off)."""
        return {
            "name": self.name,
            "timezone": TIMEZONE,
            "settings": {
                "max_combination_size": self.max_combination_size,
                "buffer_minutes": self.buffer_minutes,
                "preferred_zone": self.preferred_zone,
                "retry": {"max_attempts": 1},
                "pooling": {"enabled": pooling},
                **({"strategy_weights": self.strategy_weights} if self.strategy_weights else {}),
            },
            "zones": [{"name": z} for z in self.zones],
            "tables": [
                {
                    "label": t.label,
                    "zone": t.zone,
                    "min_capacity": t.min_capacity,
                    "max_capacity": t.max_capacity,
                    "combinable": t.combinable,
                }
                for t in self.tables
            ],
            "adjacency": [list(pair) for pair in self.adjacency],
        }


@dataclass(frozen=True)
class Combination:
    """A connected set of tables (positions in ``Instance.tables``) and its capacities."""

    tables: tuple[int, ...]
    min_capacity: int
    max_capacity: int


# ---------------------------------------------------------------------------------------
# Instances


def _tables(rng: random.Random, count: int) -> list[TableSpec]:
    sizes = [2] * round(count * 0.45) + [4] * round(count * 0.35)
    sizes += [6] * (count - len(sizes))
    rng.shuffle(sizes)
    tables = []
    for i, size in enumerate(sizes):
        zone = "Main room" if i < round(count * 0.65) else "Terrace"
        if size == 2:
            low = 1
        elif size == 4:
            low = 2 if rng.random() < 0.7 else 1
        else:
            low = 3 if rng.random() < 0.6 else 4
        tables.append(TableSpec("", zone, low, size, rng.random() > 0.08))
    # Similar tables stand next to each other; labels follow the floor order.
    tables.sort(key=lambda t: (t.zone != "Main room", t.max_capacity, t.min_capacity))
    prefix = {"Main room": "M", "Terrace": "T"}
    numbers = {"Main room": 0, "Terrace": 0}
    labelled = []
    for t in tables:
        numbers[t.zone] += 1
        labelled.append(
            TableSpec(
                f"{prefix[t.zone]}{numbers[t.zone]}",
                t.zone,
                t.min_capacity,
                t.max_capacity,
                t.combinable,
            )
        )
    return labelled


def _adjacency(rng: random.Random, tables: Sequence[TableSpec]) -> list[tuple[str, str]]:
    pairs = []
    for zone in ("Main room", "Terrace"):
        row = [t for t in tables if t.zone == zone]
        i = 0
        while i < len(row):
            length = rng.randint(2, 5)
            line = row[i : i + length]
            for a, b in itertools.pairwise(line):
                if rng.random() < 0.9:
                    pairs.append((a.label, b.label))
            i += length
    return pairs


def combinations(instance: Instance) -> list[Combination]:
    """Connected sets of 2..max_combination_size combinable tables, as the schema derives them."""
    index = {t.label: i for i, t in enumerate(instance.tables)}
    eligible = {i for i, t in enumerate(instance.tables) if t.combinable}
    neighbours: dict[int, set[int]] = {i: set() for i in eligible}
    for a, b in instance.adjacency:
        ia, ib = index[a], index[b]
        if ia in eligible and ib in eligible and ia != ib:
            neighbours[ia].add(ib)
            neighbours[ib].add(ia)
    found: set[tuple[int, ...]] = set()
    layer: set[tuple[int, ...]] = {(i,) for i in eligible}
    for _ in range(instance.max_combination_size - 1):
        grown = {
            tuple(sorted((*ids, n)))
            for ids in layer
            for i in ids
            for n in neighbours[i]
            if n not in ids
        }
        found |= grown
        layer = grown
    return [
        Combination(
            ids,
            sum(instance.tables[i].min_capacity for i in ids),
            sum(instance.tables[i].max_capacity for i in ids),
        )
        for ids in sorted(found)
    ]


def generate(
    seed: int,
    index: int,
    tables: int | None = None,
    bookings: int | None = None,
    *,
    quick: bool = False,
    combination_size: int | None = None,
) -> Instance:
    """A seeded instance: the same arguments always give the same instance. ``tables`` and
    ``bookings`` fix the sizes (else 20-30 tables, about three bookings a table), and
    ``combination_size`` the max_combination_size (else 2 or 3)."""
    key = f"allocator-bench-quality:{seed}:{index}:{tables}:{bookings}:{quick}"
    rng = random.Random(key)
    count = tables if tables is not None else (rng.randint(8, 10) if quick else rng.randint(20, 30))
    layout = _tables(rng, count)
    instance = Instance(
        name=f"bench-quality-{seed}-{index}-{os.getpid()}",
        seed=key,
        buffer_minutes=rng.choice((0, 15)),
        max_combination_size=combination_size or rng.choice((2, 3)),
        preferred_zone="Main room" if rng.random() < 0.5 else None,
        zones=["Main room", "Terrace"],
        tables=layout,
        adjacency=_adjacency(rng, layout),
        requests=[],
    )
    largest = max(
        [t.max_capacity for t in layout] + [c.max_capacity for c in combinations(instance)]
    )
    wanted = bookings if bookings is not None else round(count * rng.uniform(2.8, 3.4))
    requests = []
    for number in range(wanted):
        party = min(rng.choices(PARTY_SIZES, PARTY_WEIGHTS)[0], largest)
        if rng.random() < LUNCH_SHARE:
            start = rng.choices(LUNCH_SLOTS, LUNCH_WEIGHTS)[0]
        else:
            start = rng.choices(DINNER_SLOTS, DINNER_WEIGHTS)[0]
        requests.append(Request(number, party, start))
    rng.shuffle(requests)  # arrival order is not start order
    instance.requests = requests
    return instance


# ---------------------------------------------------------------------------------------
# The four methods


@dataclass
class Seating:
    """Which requests a method seated (request keys)."""

    seated: set[int]

    def figures(self, instance: Instance) -> dict[str, int]:
        """Parties and covers seated, and covers seated among the peak's requests."""
        parties = [r for r in instance.requests if r.key in self.seated]
        return {
            "parties": len(parties),
            "covers": sum(r.party for r in parties),
            "peak_covers": sum(r.party for r in parties if PEAK[0] <= r.start < PEAK[1]),
        }


def legacy_first_fit(instance: Instance, durations: dict[int, int]) -> Seating:
    """The baseline planner in arrival order: the smallest free single table that fits the party
    (lowest id on ties), overlap judged on the blocked period (booking + buffer)."""
    busy: dict[int, list[tuple[int, int]]] = {}
    seated = set()
    for r in instance.requests:
        start, end = r.start, r.start + durations[r.key] + instance.buffer_minutes
        free = [
            (t.max_capacity, i)
            for i, t in enumerate(instance.tables)
            if t.min_capacity <= r.party <= t.max_capacity
            and all(not (start < e and s < end) for s, e in busy.get(i, ()))
        ]
        if free:
            _, table = min(free)
            busy.setdefault(table, []).append((start, end))
            seated.add(r.key)
    return Seating(seated)


def load_solver() -> Any:
    """plpy_functions/solver.py (the code optimize_day runs), imported as plain Python."""
    folder = str(project_root() / "plpy_functions")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("solver")


def solver_model(
    solver: Any, instance: Instance, durations: dict[int, int], committed: frozenset[int]
) -> tuple[list[Any], list[Any]]:
    """The instance as the solver's resources and bookings; ``committed`` keys must be seated."""
    zone_ids = {z: i + 1 for i, z in enumerate(instance.zones)}
    resources = [
        solver.Resource((i,), t.min_capacity, t.max_capacity, (zone_ids[t.zone],))
        for i, t in enumerate(instance.tables)
    ]
    resources += [
        solver.Resource(
            c.tables,
            c.min_capacity,
            c.max_capacity,
            tuple(sorted({zone_ids[instance.tables[i].zone] for i in c.tables})),
        )
        for c in combinations(instance)
    ]
    preferred = zone_ids.get(instance.preferred_zone or "")
    bookings = [
        solver.Booking(
            r.key,
            r.party,
            float(r.start),
            float(r.start + durations[r.key] + instance.buffer_minutes),
            must_seat=r.key in committed,
            preferred_zone=preferred,
        )
        for r in instance.requests
    ]
    return resources, bookings


def solve_day(
    solver: Any,
    instance: Instance,
    durations: dict[int, int],
    committed: frozenset[int] = frozenset(),
    method: str = "milp",
) -> tuple[Seating, dict[str, Any]]:
    """The whole day solved at once in hindsight, without time limit: with ``method`` "milp"
    the optimum (given the ``committed`` bookings), with "greedy" the fallback's plan."""
    resources, bookings = solver_model(solver, instance, durations, committed)
    result = solver.solve(resources, bookings, time_limit=None, method=method)
    seated = {int(k) for k, v in result.assignment.items() if v is not None}
    if not committed <= seated:
        raise RuntimeError(f"{method} left a committed booking unseated")
    info = {
        "solver": str(result.solver),
        "status": str(result.status),
        "solve_ms": float(result.solve_ms),
        "objective": float(result.objective),
    }
    return Seating(seated), info


@dataclass
class DayRun:
    """What the database did with an instance: bookings seated (by the engine when processed
    online, else by applying the first plan), optimize_day's plans, the invariants after."""

    combinations: int
    durations: dict[int, int]
    seated: Seating
    plans: list[dict[str, Any]]
    applied: dict[str, Any] | None
    violations: list[str]
    online_s: float
    outcomes: dict[str, int]


def run_day(
    url: str,
    instance: Instance,
    day: date,
    time_limit_ms: int,
    *,
    online: bool,
    optimize_runs: int = 1,
) -> DayRun:
    """Import the layout, then create and process every booking in arrival order. ``online``:
    keep what the engine confirmed. Else the restaurant pools: every booking is deferred to
    its day's cut-off, and the first optimize_day plan is applied as the nightly run applies
    a plan that seats waiting guests (no threshold). optimize_day runs ``optimize_runs``
    times; the restaurant is deleted at the end."""
    tz = ZoneInfo(TIMEZONE)
    with psycopg.connect(url, autocommit=True) as conn:
        layout = instance.layout(pooling=not online)
        row = conn.execute(query("import_layout"), {"layout": json.dumps(layout)})
        imported = row.fetchone()
        assert imported is not None
        restaurant_id = int(imported[0]["restaurant_id"])
        try:
            started = time.perf_counter()
            durations: dict[int, int] = {}
            keys: dict[int, int] = {}
            seated: set[int] = set()
            outcomes: collections.Counter[str] = collections.Counter()
            for r in instance.requests:
                start = datetime(
                    day.year, day.month, day.day, r.start // 60, r.start % 60, tzinfo=tz
                )
                created = conn.execute(
                    query("create_booking"), (restaurant_id, r.party, start, None, None, None)
                ).fetchone()
                assert created is not None
                booking = created[0]
                booking_id = int(booking["booking_id"])
                keys[booking_id] = r.key
                span = datetime.fromisoformat(booking["end"]) - datetime.fromisoformat(
                    booking["start"]
                )
                durations[r.key] = int(span.total_seconds() // 60)
                outcome = conn.execute(query("process_booking"), (booking_id, WORKER)).fetchone()
                assert outcome is not None
                outcomes[outcome[0]["outcome"]] += 1
                if outcome[0]["outcome"] == "confirmed":
                    seated.add(r.key)
            online_s = time.perf_counter() - started
            plans: list[dict[str, Any]] = []
            for _ in range(optimize_runs):
                fetched = conn.execute(
                    query("optimize_day"), (restaurant_id, day, time_limit_ms)
                ).fetchone()
                assert fetched is not None
                plans.append(dict(fetched[0]))
            applied = None
            if not online:
                done = conn.execute(
                    query("apply_plan"), (restaurant_id, day, json.dumps(plans[0]), 0)
                ).fetchone()
                assert done is not None
                applied = dict(done[0])
                seated = {
                    keys[int(booking_id)]
                    for booking_id, _ in conn.execute(
                        query("confirmed_bookings"), {"restaurant_id": restaurant_id}
                    )
                }
            violations = [
                f"{kind} (booking {booking_id}): {detail}"
                for kind, booking_id, detail in conn.execute(
                    query("restaurant_violations"), {"restaurant_id": restaurant_id}
                )
            ]
        finally:
            conn.execute(query("delete_restaurant"), {"restaurant_id": restaurant_id})
    for plan in plans:
        plan["seat_keys"] = sorted(keys[int(s["booking_id"])] for s in plan["seat"])
    return DayRun(
        int(imported[0]["combinations"]),
        durations,
        Seating(seated),
        plans,
        applied,
        violations,
        online_s,
        dict(outcomes),
    )


# ---------------------------------------------------------------------------------------
# One instance, the aggregates


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole > 0 else 1.0


def _pct(new: float, old: float) -> float:
    return (new - old) / old * 100.0 if old > 0 else 0.0


def _run_info(plan: dict[str, Any]) -> dict[str, Any]:
    return {
        "covers_before": plan["covers_before"],
        "covers_after": plan["covers_after"],
        "moves": len(plan["moves"]),
        "seat": len(plan["seat"]),
        "improvement": plan["improvement"],
        "solver": plan["solver"],
        "status": plan["status"],
        "blocks": plan.get("blocks"),
        "solve_ms": plan["solve_ms"],
        "call_ms": plan.get("call_ms"),
    }


METHODS = ("legacy", "engine", "optimize_day", "committed_optimum", "pooled", "optimum")


def measure(
    url: str, solver: Any, instance: Instance, index: int, day: date, time_limit_ms: int
) -> dict[str, Any]:
    """Every figure of one instance: each method's parties and covers, and their ratios."""
    online = run_day(url, instance, day, time_limit_ms, online=True)
    pooled = run_day(url, instance, day, time_limit_ms, online=False)
    combos = combinations(instance)
    if online.combinations != len(combos):
        raise RuntimeError(
            f"instance {index}: the database derived {online.combinations} combinations, "
            f"the benchmark {len(combos)}"
        )
    if pooled.durations != online.durations:
        raise RuntimeError(f"instance {index}: the two runs gave bookings different durations")
    plan = online.plans[0]
    optimized = Seating(online.seated.seated | set(plan["seat_keys"]))
    legacy = legacy_first_fit(instance, online.durations)
    committed = frozenset(online.seated.seated)
    optimum, optimum_info = solve_day(solver, instance, online.durations)
    committed_optimum, committed_info = solve_day(solver, instance, online.durations, committed)
    fallback, fallback_info = solve_day(solver, instance, online.durations, method="greedy")
    figures = {
        "legacy": legacy.figures(instance),
        "engine": online.seated.figures(instance),
        "optimize_day": optimized.figures(instance),
        "committed_optimum": committed_optimum.figures(instance),
        "pooled": pooled.seated.figures(instance),
        "optimum": optimum.figures(instance),
        "fallback": fallback.figures(instance),
    }
    problems = []
    if figures["optimize_day"]["covers"] != plan["covers_after"]:
        problems.append(
            f"optimize_day reports {plan['covers_after']} covers, its plan seats "
            f"{figures['optimize_day']['covers']}"
        )
    applied = pooled.applied or {}
    if pooled.outcomes != {"deferred": len(instance.requests)}:
        problems.append(f"the pooling restaurant did not defer every booking: {pooled.outcomes}")
    if pooled.seated.seated != set(pooled.plans[0]["seat_keys"]):
        problems.append("the pooled plan applied does not confirm exactly the bookings it seats")
    if not applied.get("applied") and pooled.plans[0]["seat"]:
        problems.append(f"the pooled plan was not applied: {applied.get('rationale')}")
    problems += [f"online run: {v}" for v in online.violations]
    problems += [f"pooled run: {v}" for v in pooled.violations]
    peak = [r for r in instance.requests if PEAK[0] <= r.start < PEAK[1]]
    covers = {m: figures[m]["covers"] for m in figures}
    return {
        "index": index,
        "seed": instance.seed,
        "tables": len(instance.tables),
        "seats": sum(t.max_capacity for t in instance.tables),
        "combinations": len(combos),
        "max_combination_size": instance.max_combination_size,
        "buffer_minutes": instance.buffer_minutes,
        "preferred_zone": instance.preferred_zone,
        "bookings": len(instance.requests),
        "demand": {
            "parties": len(instance.requests),
            "covers": sum(r.party for r in instance.requests),
            "peak_parties": len(peak),
            "peak_covers": sum(r.party for r in peak),
        },
        **figures,
        "optimize_day_run": _run_info(plan),
        "pooled_run": {
            **_run_info(pooled.plans[0]),
            "apply": applied.get("status"),
            "outcomes": pooled.outcomes,
        },
        "engine_outcomes": online.outcomes,
        "optimum_run": optimum_info,
        "committed_optimum_run": committed_info,
        "fallback_run": fallback_info,
        "online_s": round(online.online_s, 3),
        "ratio_pooled_optimum": _ratio(covers["pooled"], covers["optimum"]),
        "ratio_optimize_day_committed": _ratio(covers["optimize_day"], covers["committed_optimum"]),
        "ratio_optimize_day_optimum": _ratio(covers["optimize_day"], covers["optimum"]),
        "ratio_committed_optimum": _ratio(covers["committed_optimum"], covers["optimum"]),
        "ratio_fallback_optimum": _ratio(covers["fallback"], covers["optimum"]),
        "ratio_engine_optimum": _ratio(covers["engine"], covers["optimum"]),
        "ratio_legacy_optimum": _ratio(covers["legacy"], covers["optimum"]),
        "peak_gain_engine_over_legacy_pct": _pct(
            figures["engine"]["peak_covers"], figures["legacy"]["peak_covers"]
        ),
        "problems": problems,
    }


def check(row: dict[str, Any]) -> list[str]:
    """What must hold for an instance: optimize_day never unseats, each optimum bounds the
    plans of its problem, the pooled plan is applied as planned."""
    problems = list(row["problems"])
    covers = {m: row[m]["covers"] for m in (*METHODS, "fallback")}
    if row["optimize_day_run"]["covers_before"] != covers["engine"]:
        problems.append("optimize_day covers_before differs from the engine's confirmed covers")
    if covers["optimize_day"] < covers["engine"]:
        problems.append("optimize_day seats fewer covers than the engine")
    if covers["committed_optimum"] < covers["optimize_day"]:
        problems.append("the committed optimum seats fewer covers than optimize_day")
    if covers["optimum"] < max(covers["committed_optimum"], covers["pooled"], covers["fallback"]):
        problems.append("the optimum seats fewer covers than a plan of the same day")
    return [f"instance {row['index']}: {p}" for p in problems]


def distribution(ratios: Sequence[float]) -> dict[str, Any]:
    """Mean, spread and the count below 97% of covers ratios."""
    import numpy as np

    low = sum(1 for x in ratios if x < TARGET_LOW_RATIO)
    return {
        "mean": statistics.fmean(ratios),
        "min": min(ratios),
        "p5": float(np.percentile(ratios, 5)),
        "median": statistics.median(ratios),
        "below_97": low,
        "share_below_97": low / len(ratios),
    }


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means, the ratio distributions and the gains at the peak."""
    methods = (*METHODS, "fallback")
    peak = {m: sum(r[m]["peak_covers"] for r in rows) for m in methods}
    return {
        "instances": len(rows),
        "mean_covers": {m: statistics.fmean(r[m]["covers"] for r in rows) for m in methods},
        "mean_parties": {m: statistics.fmean(r[m]["parties"] for r in rows) for m in methods},
        "mean_demand_covers": statistics.fmean(r["demand"]["covers"] for r in rows),
        **{
            name: distribution([float(r[name]) for r in rows])
            for name in (
                "ratio_pooled_optimum",
                "ratio_optimize_day_committed",
                "ratio_optimize_day_optimum",
                "ratio_committed_optimum",
                "ratio_fallback_optimum",
            )
        },
        "ratio_engine_optimum_mean": statistics.fmean(
            float(r["ratio_engine_optimum"]) for r in rows
        ),
        "ratio_legacy_optimum_mean": statistics.fmean(
            float(r["ratio_legacy_optimum"]) for r in rows
        ),
        "optimize_day_gain_over_engine_pct": _pct(
            sum(r["optimize_day"]["covers"] for r in rows),
            sum(r["engine"]["covers"] for r in rows),
        ),
        "peak": {
            "window": f"{PEAK[0] // 60:02d}:{PEAK[0] % 60:02d}-{PEAK[1] // 60:02d}:"
            f"{PEAK[1] % 60:02d}",
            "demand_covers": sum(r["demand"]["peak_covers"] for r in rows),
            **{f"{m}_covers": peak[m] for m in methods},
            "engine_gain_over_legacy_pct": _pct(peak["engine"], peak["legacy"]),
            "engine_gain_over_legacy_pct_mean": statistics.fmean(
                float(r["peak_gain_engine_over_legacy_pct"]) for r in rows
            ),
            "optimum_gain_over_legacy_pct": _pct(peak["optimum"], peak["legacy"]),
            "pooled_gain_over_legacy_pct": _pct(peak["pooled"], peak["legacy"]),
            "optimize_day_gain_over_legacy_pct": _pct(peak["optimize_day"], peak["legacy"]),
            "engine_share_of_optimum": _ratio(peak["engine"], peak["optimum"]),
        },
        "optimize_day_improvement": {
            "mean": statistics.fmean(float(r["optimize_day_run"]["improvement"]) for r in rows),
            "max": max(float(r["optimize_day_run"]["improvement"]) for r in rows),
            "clearing_default_threshold": sum(
                1 for r in rows if float(r["optimize_day_run"]["improvement"]) >= 0.10
            ),
        },
        **{
            f"{run}_solve_ms": {
                "mean": statistics.fmean(float(r[run]["solve_ms"]) for r in rows),
                "max": max(float(r[run]["solve_ms"]) for r in rows),
            }
            for run in ("optimize_day_run", "pooled_run", "optimum_run", "fallback_run")
        },
        "statuses": {
            run: dict(sorted(collections.Counter(str(r[run]["status"]) for r in rows).items()))
            for run in ("optimize_day_run", "pooled_run")
        },
    }


def measure_large(
    url: str, solver: Any, instance: Instance, day: date, time_limit_ms: int, runs: int
) -> dict[str, Any]:
    """optimize_day's time on the large instance, after the engine and pooled: medians of
    ``runs`` runs of each; and the pooled plan against the optimum (MILP, no time limit)."""
    online = run_day(url, instance, day, time_limit_ms, online=True, optimize_runs=runs)
    pooled = run_day(url, instance, day, time_limit_ms, online=False, optimize_runs=runs)
    engine = online.seated.figures(instance)

    def timing(plans: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "covers_after": plans[0]["covers_after"],
            "solver": [p["solver"] for p in plans],
            "status": [p["status"] for p in plans],
            "solve_ms_runs": [float(p["solve_ms"]) for p in plans],
            "solve_ms_median": statistics.median(float(p["solve_ms"]) for p in plans),
            "call_ms_median": statistics.median(float(p["call_ms"]) for p in plans),
        }

    after_engine = timing(online.plans)
    pooled_timing = timing(pooled.plans)
    optimum, optimum_info = solve_day(solver, instance, pooled.durations)
    optimum_covers = optimum.figures(instance)["covers"]
    pooled_timing["ratio_optimum"] = _ratio(pooled_timing["covers_after"], optimum_covers)
    return {
        "tables": len(instance.tables),
        "bookings": len(instance.requests),
        "combinations": online.combinations,
        "demand_covers": sum(r.party for r in instance.requests),
        "engine_covers": engine["covers"],
        "after_engine": after_engine,
        "pooled": pooled_timing,
        "optimum_covers": optimum_covers,
        "optimum_run": optimum_info,
        "solve_ms_median": max(after_engine["solve_ms_median"], pooled_timing["solve_ms_median"]),
        "time_limit_ms": time_limit_ms,
        "online_s": round(online.online_s, 3),
    }


# ---------------------------------------------------------------------------------------
# Output


def machine_info(url: str) -> dict[str, Any]:
    """Where the figures come from: cores, Python, SciPy, NumPy, PostgreSQL."""
    with psycopg.connect(url) as conn:
        server = conn.info.server_version
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "scipy": metadata.version("scipy"),
        "numpy": metadata.version("numpy"),
        "platform": platform.platform(),
        "postgresql": f"{server // 10000}.{server % 10000}",
    }


def print_report(console: Console, report: dict[str, Any]) -> None:
    """The per-instance table and the summary."""
    rows = report["instances"]
    grid = Table(title="Seated covers per instance (od = optimize_day after the engine)")
    for column in (
        "#",
        "tables",
        "bookings",
        "demand",
        "legacy",
        "engine",
        "od",
        "committed opt",
        "pooled",
        "optimum",
        "od/committed",
        "pooled/opt",
        "pooled ms",
    ):
        grid.add_column(column, justify="right")

    def pct(ratio: float) -> str:
        return ("[red]" if ratio < TARGET_LOW_RATIO else "") + f"{ratio:.2%}"

    for r in rows:
        grid.add_row(
            str(r["index"]),
            str(r["tables"]),
            str(r["bookings"]),
            str(r["demand"]["covers"]),
            *(str(r[m]["covers"]) for m in METHODS),
            pct(r["ratio_optimize_day_committed"]),
            pct(r["ratio_pooled_optimum"]),
            f"{r['pooled_run']['solve_ms']:.0f}",
        )
    console.print(grid)

    agg = report["aggregates"]
    large = report["large"]
    targets = report["targets"]
    seed = report["params"]["seed"]
    summary = Table(title=f"Quality over {agg['instances']} instances (seed {seed})")
    summary.add_column("figure")
    summary.add_column("value", justify="right")
    summary.add_column("target", justify="right")
    means = agg["mean_covers"]
    summary.add_row("mean demand covers", f"{agg['mean_demand_covers']:.1f}", "")
    for method in (*METHODS, "fallback"):
        summary.add_row(f"mean covers: {method}", f"{means[method]:.1f}", "")
    for name, label in (
        ("pooled", "pooled optimize_day / optimum"),
        ("committed", "optimize_day after the engine / committed optimum"),
    ):
        ratio = agg[targets[f"{name}_mean_ratio"]["figure"]]
        summary.add_row(
            f"{label}: mean",
            f"{ratio['mean']:.2%}",
            _mark(targets[f"{name}_mean_ratio"]["met"], f">= {TARGET_MEAN_RATIO:.0%}"),
        )
        summary.add_row(
            f"{label}: instances below 97%",
            f"{ratio['below_97']} ({ratio['share_below_97']:.1%})",
            _mark(targets[f"{name}_share_below_97"]["met"], f"< {TARGET_LOW_SHARE:.0%}"),
        )
    for name, label in (
        ("ratio_optimize_day_optimum", "optimize_day after the engine / optimum"),
        ("ratio_committed_optimum", "committed optimum / optimum (cost of confirming online)"),
        ("ratio_fallback_optimum", "fallback (greedy + local search) / optimum"),
    ):
        ratio = agg[name]
        summary.add_row(f"{label}: mean / min", f"{ratio['mean']:.2%} / {ratio['min']:.2%}", "")
    summary.add_row("engine / optimum: mean", f"{agg['ratio_engine_optimum_mean']:.2%}", "")
    summary.add_row("legacy / optimum: mean", f"{agg['ratio_legacy_optimum_mean']:.2%}", "")
    window = agg["peak"]["window"]
    for method in ("engine", "optimize_day", "pooled", "optimum"):
        summary.add_row(
            f"{method} gain over first-fit at peak ({window})",
            f"{agg['peak'][f'{method}_gain_over_legacy_pct']:+.2f}%",
            "",
        )
    summary.add_row(
        "optimize_day gain over engine (covers)",
        f"{agg['optimize_day_gain_over_engine_pct']:+.2f}%",
        "",
    )
    for scenario in ("after_engine", "pooled"):
        timing = large[scenario]
        summary.add_row(
            f"optimize_day {scenario.replace('_', ' ')}, {large['tables']} tables / "
            f"{large['bookings']} bookings: solve / call ms "
            f"(median of {len(timing['solve_ms_runs'])})",
            f"{timing['solve_ms_median']:.0f} / {timing['call_ms_median']:.0f}",
            _mark(timing["solve_ms_median"] <= TARGET_SOLVE_MS, f"<= {TARGET_SOLVE_MS:.0f}"),
        )
    summary.add_row(
        f"pooled plan, {large['tables']} tables / {large['bookings']} bookings: covers / optimum "
        f"(MILP without limit: {large['optimum_run']['status']}, "
        f"{large['optimum_run']['solve_ms'] / 1000:.1f} s)",
        f"{large['pooled']['covers_after']} / {large['optimum_covers']} "
        f"({large['pooled']['ratio_optimum']:.2%})",
        "",
    )
    console.print(summary)
    for problem in report["checks"]:
        console.print(f"[red]check failed[/red]: {problem}")


def _mark(ok: bool, text: str) -> str:
    return f"[green]{text} met[/green]" if ok else f"[red]{text} missed[/red]"


def write_png(path: Path, report: dict[str, Any]) -> None:
    """Histograms of the covers ratios and mean covers per method."""
    from matplotlib.figure import Figure

    rows = report["instances"]
    agg = report["aggregates"]
    series = (
        ("ratio_pooled_optimum", "pooled / optimum", "#55a868"),
        ("ratio_optimize_day_committed", "after engine / committed optimum", "#4c72b0"),
        ("ratio_optimize_day_optimum", "after engine / optimum", "#c4ad66"),
    )
    ratios = {name: [100.0 * r[name] for r in rows] for name, _, _ in series}
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    low = math.floor(min([*itertools.chain(*ratios.values()), 95.0]) * 2) / 2
    bins = [low + 0.5 * i for i in range(round((100.5 - low) / 0.5) + 1)]
    for name, label, color in series:
        left.hist(
            ratios[name],
            bins=bins,
            color=color,
            alpha=0.6,
            label=f"{label} (mean {agg[name]['mean']:.2%})",
        )
    left.axvline(100 * TARGET_LOW_RATIO, color="#c44e52", linestyle="--", label="97%")
    left.set_xlabel("optimize_day covers / optimum covers of its problem (%)")
    left.set_ylabel("instances")
    left.set_title(f"optimize_day against the optimum ({len(rows)} instances)")
    left.legend(fontsize="small", loc="upper left")
    methods = (*METHODS, "fallback")
    means = [agg["mean_covers"][m] for m in methods]
    colors = ["#8c8c8c", "#4c72b0", "#6d8fc4", "#a5bde0", "#55a868", "#dd8452", "#c44e52"]
    bars = right.bar([m.replace("_", "\n") for m in methods], means, color=colors)
    right.bar_label(bars, labels=[f"{m:.1f}" for m in means])
    right.axhline(
        agg["mean_demand_covers"],
        color="black",
        linestyle=":",
        label=f"demand {agg['mean_demand_covers']:.1f}",
    )
    right.set_ylabel("mean covers seated per day")
    right.set_title("Mean covers per method")
    right.legend(loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


# ---------------------------------------------------------------------------------------
# Entry point


def results_dir() -> Path:
    """Where the figures go by default: bench/results/."""
    return project_root() / "bench" / "results"


@dataclass
class Settings:
    """A run's settings, as the command line gives them (bench/cli.py: ``quality``), with the
    sizes that ``--quick`` changes already resolved."""

    instances: int = 50
    seed: int = 1
    tables_large: int = 40
    bookings_large: int = 300
    json: Path = field(default_factory=lambda: results_dir() / "quality.json")
    png: Path = field(default_factory=lambda: results_dir() / "quality.png")
    time_limit_ms: int = 2000
    quick: bool = False
    strategy_weights: dict[str, float] | None = None


def run(args: Settings) -> int:
    """Run the benchmark, print the figures, write the JSON and the PNG; 1 if a check failed,
    2 if the database refuses ``--strategy-weights``."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=132)
    started = time.perf_counter()
    url = database_url()
    if args.strategy_weights:
        # The database's own check of the names and ranges, before any instance runs.
        with psycopg.connect(url) as conn:
            try:
                conn.execute(
                    query("validate_settings"),
                    (json.dumps({"strategy_weights": args.strategy_weights}),),
                )
            except psycopg.Error as exc:
                hint = exc.diag.message_hint
                console.print(f"--strategy-weights: {literal(exc.diag.message_primary)}")
                if hint:
                    console.print(literal(hint, multiline=True))
                return 2
    solver = load_solver()
    day = datetime.now(ZoneInfo(TIMEZONE)).date() + timedelta(days=7)

    rows = []
    with console.status("running instances") as status:
        for i in range(args.instances):
            status.update(f"instance {i + 1}/{args.instances}")
            instance = generate(args.seed, i, quick=args.quick)
            instance.strategy_weights = args.strategy_weights
            rows.append(measure(url, solver, instance, i, day, args.time_limit_ms))
        status.update(f"large instance: {args.tables_large} tables, {args.bookings_large} bookings")
        # The timing instance combines up to three tables: the larger model.
        large_instance = generate(
            args.seed, -1, args.tables_large, args.bookings_large, combination_size=3
        )
        large = measure_large(
            url, solver, large_instance, day, args.time_limit_ms, runs=1 if args.quick else 3
        )

    agg = aggregate(rows)

    def target(figure: str) -> dict[str, dict[str, Any]]:
        ratio = agg[figure]
        return {
            "mean_ratio": {
                "figure": figure,
                "target": TARGET_MEAN_RATIO,
                "value": ratio["mean"],
                "met": ratio["mean"] >= TARGET_MEAN_RATIO,
            },
            "share_below_97": {
                "figure": figure,
                "target": TARGET_LOW_SHARE,
                "value": ratio["share_below_97"],
                "met": ratio["share_below_97"] < TARGET_LOW_SHARE,
            },
        }

    targets = {
        f"{name}_{key}": value
        for name, figure in (
            ("pooled", "ratio_pooled_optimum"),
            ("committed", "ratio_optimize_day_committed"),
        )
        for key, value in target(figure).items()
    }
    targets["large_solve_ms"] = {
        "target": TARGET_SOLVE_MS,
        "value": large["solve_ms_median"],
        "met": large["solve_ms_median"] <= TARGET_SOLVE_MS,
    }
    report: dict[str, Any] = {
        "benchmark": "quality",
        "created_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "params": {
            "instances": args.instances,
            "seed": args.seed,
            "quick": args.quick,
            "time_limit_ms": args.time_limit_ms,
            "tables_large": args.tables_large,
            "bookings_large": args.bookings_large,
            "timezone": TIMEZONE,
            "strategy_weights": args.strategy_weights,
            "day": day.isoformat(),
            "peak_window": agg["peak"]["window"],
        },
        "machine": machine_info(url),
        "instances": rows,
        "aggregates": agg,
        "large": large,
        "targets": targets,
        "checks": [problem for row in rows for problem in check(row)],
    }
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    print_report(console, report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    write_png(args.png, report)
    console.print(f"wrote {args.json} and {args.png}")
    console.print(f"elapsed {report['elapsed_s']:.1f} s")
    return 1 if report["checks"] else 0
