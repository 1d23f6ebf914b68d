"""Seated covers on realistic days: legacy first-fit, the online engine, optimize_day and the
hindsight optimum, compared instance by instance (`allocator bench quality`).

Each instance is a seeded restaurant (20-30 tables of 2, 4 and 6 seats, adjacency so that
tables combine) and one local day of bookings with a lunch service and a dinner service whose
peak asks for more than the room holds. The bookings arrive in random order, not by start time.

- legacy: the baseline planner simulated in Python (smallest free single table that fits,
  lowest id on ties, no combinations), in arrival order;
- engine: the real database: ``create_booking`` then ``process_booking`` for every arrival;
- optimize_day: ``allocator.optimize_day`` after the engine (it writes nothing; confirmed
  bookings may move but stay seated);
- optimum: ``plpy_functions/solver.py`` on the whole day in hindsight (MILP, no time limit,
  nothing locked, nothing seated yet): the upper bound.

A last, larger instance times ``optimize_day`` (median ``solve_ms`` of three runs).
"""

from __future__ import annotations

import argparse
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
from dataclasses import dataclass
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

    def layout(self) -> dict[str, Any]:
        """The instance as an ``import_layout`` document."""
        return {
            "name": self.name,
            "timezone": TIMEZONE,
            "settings": {
                "max_combination_size": self.max_combination_size,
                "buffer_minutes": self.buffer_minutes,
                "preferred_zone": self.preferred_zone,
                "retry": {"max_attempts": 1},
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


def hindsight_optimum(
    solver: Any, instance: Instance, durations: dict[int, int]
) -> tuple[Seating, dict[str, Any]]:
    """The whole day solved at once with every booking free: the upper bound."""
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
            preferred_zone=preferred,
        )
        for r in instance.requests
    ]
    result = solver.solve(resources, bookings, time_limit=None, method="milp")
    seated = {int(k) for k, v in result.assignment.items() if v is not None}
    info = {
        "solver": str(result.solver),
        "status": str(result.status),
        "solve_ms": float(result.solve_ms),
        "objective": float(result.objective),
    }
    return Seating(seated), info


@dataclass
class Online:
    """What the database did with an instance: the engine's seating and optimize_day's plan."""

    restaurant_id: int
    combinations: int
    durations: dict[int, int]
    engine: Seating
    plans: list[dict[str, Any]]
    online_s: float


def run_online(
    url: str, instance: Instance, day: date, time_limit_ms: int, optimize_runs: int = 1
) -> Online:
    """Import the layout, create and process every booking in arrival order, run optimize_day
    (``optimize_runs`` times), then delete the restaurant."""
    tz = ZoneInfo(TIMEZONE)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query("import_layout"), {"layout": json.dumps(instance.layout())})
        imported = row.fetchone()
        assert imported is not None
        restaurant_id = int(imported[0]["restaurant_id"])
        try:
            started = time.perf_counter()
            durations: dict[int, int] = {}
            seated: set[int] = set()
            ids: dict[int, int] = {}
            for r in instance.requests:
                start = datetime(
                    day.year, day.month, day.day, r.start // 60, r.start % 60, tzinfo=tz
                )
                created = conn.execute(
                    query("create_booking"), (restaurant_id, r.party, start, None, None, None)
                ).fetchone()
                assert created is not None
                booking = created[0]
                ids[r.key] = int(booking["booking_id"])
                span = datetime.fromisoformat(booking["end"]) - datetime.fromisoformat(
                    booking["start"]
                )
                durations[r.key] = int(span.total_seconds() // 60)
                outcome = conn.execute(query("process_booking"), (ids[r.key], WORKER)).fetchone()
                assert outcome is not None
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
        finally:
            conn.execute(query("delete_restaurant"), {"restaurant_id": restaurant_id})
    keys = {booking_id: key for key, booking_id in ids.items()}
    for plan in plans:
        plan["seat_keys"] = sorted(keys[int(s["booking_id"])] for s in plan["seat"])
    return Online(
        restaurant_id,
        int(imported[0]["combinations"]),
        durations,
        Seating(seated),
        plans,
        online_s,
    )


# ---------------------------------------------------------------------------------------
# One instance, the aggregates


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole > 0 else 1.0


def _pct(new: float, old: float) -> float:
    return (new - old) / old * 100.0 if old > 0 else 0.0


def measure(
    url: str, solver: Any, instance: Instance, index: int, day: date, time_limit_ms: int
) -> dict[str, Any]:
    """Every figure of one instance: the four methods' parties and covers, and their ratios."""
    online = run_online(url, instance, day, time_limit_ms)
    combos = combinations(instance)
    if online.combinations != len(combos):
        raise RuntimeError(
            f"instance {index}: the database derived {online.combinations} combinations, "
            f"the benchmark {len(combos)}"
        )
    plan = online.plans[0]
    optimized = Seating(online.engine.seated | set(plan["seat_keys"]))
    legacy = legacy_first_fit(instance, online.durations)
    optimum, optimum_info = hindsight_optimum(solver, instance, online.durations)
    figures = {
        "legacy": legacy.figures(instance),
        "engine": online.engine.figures(instance),
        "optimize_day": optimized.figures(instance),
        "optimum": optimum.figures(instance),
    }
    if figures["optimize_day"]["covers"] != plan["covers_after"]:
        raise RuntimeError(
            f"instance {index}: optimize_day reports {plan['covers_after']} covers, "
            f"its plan seats {figures['optimize_day']['covers']}"
        )
    peak = [r for r in instance.requests if PEAK[0] <= r.start < PEAK[1]]
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
        "optimize_day_run": {
            "covers_before": plan["covers_before"],
            "covers_after": plan["covers_after"],
            "moves": len(plan["moves"]),
            "seat": len(plan["seat"]),
            "improvement": plan["improvement"],
            "solver": plan["solver"],
            "status": plan["status"],
            "solve_ms": plan["solve_ms"],
        },
        "optimum_run": optimum_info,
        "online_s": round(online.online_s, 3),
        "ratio_optimize_day_optimum": _ratio(
            figures["optimize_day"]["covers"], figures["optimum"]["covers"]
        ),
        "ratio_engine_optimum": _ratio(figures["engine"]["covers"], figures["optimum"]["covers"]),
        "ratio_legacy_optimum": _ratio(figures["legacy"]["covers"], figures["optimum"]["covers"]),
        "peak_gain_engine_over_legacy_pct": _pct(
            figures["engine"]["peak_covers"], figures["legacy"]["peak_covers"]
        ),
    }


def check(row: dict[str, Any]) -> list[str]:
    """What must hold for an instance: optimize_day never unseats, the optimum bounds it."""
    problems = []
    covers = {m: row[m]["covers"] for m in ("engine", "optimize_day", "optimum")}
    if row["optimize_day_run"]["covers_before"] != covers["engine"]:
        problems.append("optimize_day covers_before differs from the engine's confirmed covers")
    if covers["optimize_day"] < covers["engine"]:
        problems.append("optimize_day seats fewer covers than the engine")
    if covers["optimum"] < covers["optimize_day"]:
        problems.append("the optimum seats fewer covers than optimize_day")
    return [f"instance {row['index']}: {p}" for p in problems]


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means, the optimize_day/optimum distribution and the engine's gain at the peak."""
    import numpy as np

    ratios = [float(r["ratio_optimize_day_optimum"]) for r in rows]
    methods = ("legacy", "engine", "optimize_day", "optimum")
    low = sum(1 for x in ratios if x < TARGET_LOW_RATIO)
    peak_legacy = sum(r["legacy"]["peak_covers"] for r in rows)
    peak_engine = sum(r["engine"]["peak_covers"] for r in rows)
    return {
        "instances": len(rows),
        "mean_covers": {m: statistics.fmean(r[m]["covers"] for r in rows) for m in methods},
        "mean_parties": {m: statistics.fmean(r[m]["parties"] for r in rows) for m in methods},
        "mean_demand_covers": statistics.fmean(r["demand"]["covers"] for r in rows),
        "ratio_optimize_day_optimum": {
            "mean": statistics.fmean(ratios),
            "min": min(ratios),
            "p5": float(np.percentile(ratios, 5)),
            "median": statistics.median(ratios),
            "below_97": low,
            "share_below_97": low / len(rows),
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
            "legacy_covers": peak_legacy,
            "engine_covers": peak_engine,
            "optimize_day_covers": sum(r["optimize_day"]["peak_covers"] for r in rows),
            "optimum_covers": sum(r["optimum"]["peak_covers"] for r in rows),
            "engine_gain_over_legacy_pct": _pct(peak_engine, peak_legacy),
            "engine_gain_over_legacy_pct_mean": statistics.fmean(
                float(r["peak_gain_engine_over_legacy_pct"]) for r in rows
            ),
        },
        "optimize_day_improvement": {
            "mean": statistics.fmean(float(r["optimize_day_run"]["improvement"]) for r in rows),
            "max": max(float(r["optimize_day_run"]["improvement"]) for r in rows),
            "clearing_default_threshold": sum(
                1 for r in rows if float(r["optimize_day_run"]["improvement"]) >= 0.10
            ),
        },
        "optimize_day_solve_ms": {
            "mean": statistics.fmean(float(r["optimize_day_run"]["solve_ms"]) for r in rows),
            "max": max(float(r["optimize_day_run"]["solve_ms"]) for r in rows),
        },
        "optimum_solve_ms": {
            "mean": statistics.fmean(float(r["optimum_run"]["solve_ms"]) for r in rows),
            "max": max(float(r["optimum_run"]["solve_ms"]) for r in rows),
        },
    }


def measure_large(
    url: str, instance: Instance, day: date, time_limit_ms: int, runs: int
) -> dict[str, Any]:
    """optimize_day's solve time on the large instance after the online engine: median of runs."""
    online = run_online(url, instance, day, time_limit_ms, optimize_runs=runs)
    times = [float(p["solve_ms"]) for p in online.plans]
    engine = online.engine.figures(instance)
    return {
        "tables": len(instance.tables),
        "bookings": len(instance.requests),
        "combinations": online.combinations,
        "demand_covers": sum(r.party for r in instance.requests),
        "engine_covers": engine["covers"],
        "optimize_day_covers": online.plans[0]["covers_after"],
        "solver": [p["solver"] for p in online.plans],
        "status": [p["status"] for p in online.plans],
        "solve_ms_runs": times,
        "solve_ms_median": statistics.median(times),
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
    grid = Table(title="Seated covers per instance (peak = covers seated of peak bookings)")
    for column in (
        "#",
        "tables",
        "bookings",
        "demand",
        "legacy",
        "engine",
        "optimize_day",
        "optimum",
        "od/opt",
        "peak legacy",
        "peak engine",
        "solve ms",
    ):
        grid.add_column(column, justify="right")
    for r in rows:
        ratio = r["ratio_optimize_day_optimum"]
        grid.add_row(
            str(r["index"]),
            str(r["tables"]),
            str(r["bookings"]),
            str(r["demand"]["covers"]),
            str(r["legacy"]["covers"]),
            str(r["engine"]["covers"]),
            str(r["optimize_day"]["covers"]),
            str(r["optimum"]["covers"]),
            ("[red]" if ratio < TARGET_LOW_RATIO else "") + f"{ratio:.2%}",
            str(r["legacy"]["peak_covers"]),
            str(r["engine"]["peak_covers"]),
            f"{r['optimize_day_run']['solve_ms']:.0f}",
        )
    console.print(grid)

    agg = report["aggregates"]
    ratio = agg["ratio_optimize_day_optimum"]
    large = report["large"]
    targets = report["targets"]
    seed = report["params"]["seed"]
    summary = Table(title=f"Quality over {agg['instances']} instances (seed {seed})")
    summary.add_column("figure")
    summary.add_column("value", justify="right")
    summary.add_column("target", justify="right")
    means = agg["mean_covers"]
    summary.add_row("mean demand covers", f"{agg['mean_demand_covers']:.1f}", "")
    for method in ("legacy", "engine", "optimize_day", "optimum"):
        summary.add_row(f"mean covers: {method}", f"{means[method]:.1f}", "")
    summary.add_row(
        "optimize_day / optimum: mean",
        f"{ratio['mean']:.2%}",
        _mark(targets["mean_ratio"]["met"], f">= {TARGET_MEAN_RATIO:.0%}"),
    )
    summary.add_row(
        "optimize_day / optimum: min / P5", f"{ratio['min']:.2%} / {ratio['p5']:.2%}", ""
    )
    summary.add_row(
        "instances below 97%",
        f"{ratio['below_97']} ({ratio['share_below_97']:.1%})",
        _mark(targets["share_below_97"]["met"], f"< {TARGET_LOW_SHARE:.0%}"),
    )
    summary.add_row("engine / optimum: mean", f"{agg['ratio_engine_optimum_mean']:.2%}", "")
    summary.add_row("legacy / optimum: mean", f"{agg['ratio_legacy_optimum_mean']:.2%}", "")
    summary.add_row(
        f"engine gain over first-fit at peak ({agg['peak']['window']})",
        f"{agg['peak']['engine_gain_over_legacy_pct']:+.2f}%",
        "",
    )
    summary.add_row(
        "optimize_day gain over engine (covers)",
        f"{agg['optimize_day_gain_over_engine_pct']:+.2f}%",
        "",
    )
    summary.add_row(
        f"optimize_day solve ms, {large['tables']} tables / {large['bookings']} bookings "
        f"(median of {len(large['solve_ms_runs'])})",
        f"{large['solve_ms_median']:.0f}",
        _mark(targets["large_solve_ms"]["met"], f"<= {TARGET_SOLVE_MS:.0f}"),
    )
    console.print(summary)
    for problem in report["checks"]:
        console.print(f"[red]check failed[/red]: {problem}")


def _mark(ok: bool, text: str) -> str:
    return f"[green]{text} met[/green]" if ok else f"[red]{text} missed[/red]"


def write_png(path: Path, report: dict[str, Any]) -> None:
    """Histogram of optimize_day/optimum covers ratios and mean covers per method."""
    from matplotlib.figure import Figure

    ratios = [100.0 * r["ratio_optimize_day_optimum"] for r in report["instances"]]
    agg = report["aggregates"]
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    low = math.floor(min([*ratios, 95.0]) * 2) / 2  # half-percent bins, 100% in the last
    bins = [low + 0.5 * i for i in range(round((100.5 - low) / 0.5) + 1)]
    left.hist(ratios, bins=bins, color="#4c72b0", edgecolor="white")
    left.axvline(100 * TARGET_LOW_RATIO, color="#c44e52", linestyle="--", label="97%")
    left.axvline(
        100 * agg["ratio_optimize_day_optimum"]["mean"],
        color="#55a868",
        label=f"mean {agg['ratio_optimize_day_optimum']['mean']:.2%}",
    )
    left.set_xlabel("optimize_day covers / optimum covers (%)")
    left.set_ylabel("instances")
    left.set_title(f"optimize_day vs hindsight optimum ({len(ratios)} instances)")
    left.legend()
    methods = ("legacy", "engine", "optimize_day", "optimum")
    means = [agg["mean_covers"][m] for m in methods]
    bars = right.bar(methods, means, color=["#8c8c8c", "#4c72b0", "#55a868", "#dd8452"])
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


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line of ``allocator bench quality``."""
    results = project_root() / "bench" / "results"
    parser = argparse.ArgumentParser(
        prog="allocator bench quality",
        description="Seated covers: legacy first-fit, the online engine, optimize_day and the "
        "hindsight optimum on seeded restaurant days.",
    )
    parser.add_argument("--instances", type=int, default=50, help="instances to run (50)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the instances (1)")
    parser.add_argument(
        "--tables-large",
        type=int,
        default=None,
        help="tables of the solve-time instance (40; 10 with --quick)",
    )
    parser.add_argument(
        "--bookings-large",
        type=int,
        default=None,
        help="bookings of the solve-time instance (300; 40 with --quick)",
    )
    parser.add_argument(
        "--json", type=Path, default=results / "quality.json", help="where to write the figures"
    )
    parser.add_argument(
        "--png", type=Path, default=results / "quality.png", help="where to write the chart"
    )
    parser.add_argument(
        "--time-limit-ms", type=int, default=2000, help="optimize_day's time limit (2000)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny instances and one timing run, for tests"
    )
    args = parser.parse_args(argv)
    if args.instances < 1:
        parser.error("--instances must be at least 1")
    if args.tables_large is None:
        args.tables_large = 10 if args.quick else 40
    if args.bookings_large is None:
        args.bookings_large = 40 if args.quick else 300
    return args


def main(argv: list[str]) -> int:
    """Run the benchmark, print the figures, write the JSON and the PNG; 1 if a check failed."""
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=132)
    started = time.perf_counter()
    url = database_url()
    solver = load_solver()
    day = datetime.now(ZoneInfo(TIMEZONE)).date() + timedelta(days=7)

    rows = []
    with console.status("running instances") as status:
        for i in range(args.instances):
            status.update(f"instance {i + 1}/{args.instances}")
            instance = generate(args.seed, i, quick=args.quick)
            rows.append(measure(url, solver, instance, i, day, args.time_limit_ms))
        status.update(f"large instance: {args.tables_large} tables, {args.bookings_large} bookings")
        # The timing instance combines up to three tables: the larger model.
        large_instance = generate(
            args.seed, -1, args.tables_large, args.bookings_large, combination_size=3
        )
        large = measure_large(
            url, large_instance, day, args.time_limit_ms, runs=1 if args.quick else 3
        )

    agg = aggregate(rows)
    ratio = agg["ratio_optimize_day_optimum"]
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
            "day": day.isoformat(),
            "peak_window": agg["peak"]["window"],
        },
        "machine": machine_info(url),
        "instances": rows,
        "aggregates": agg,
        "large": large,
        "targets": {
            "mean_ratio": {
                "target": TARGET_MEAN_RATIO,
                "value": ratio["mean"],
                "met": ratio["mean"] >= TARGET_MEAN_RATIO,
            },
            "share_below_97": {
                "target": TARGET_LOW_SHARE,
                "value": ratio["share_below_97"],
                "met": ratio["share_below_97"] < TARGET_LOW_SHARE,
            },
            "large_solve_ms": {
                "target": TARGET_SOLVE_MS,
                "value": large["solve_ms_median"],
                "met": large["solve_ms_median"] <= TARGET_SOLVE_MS,
            },
        },
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
