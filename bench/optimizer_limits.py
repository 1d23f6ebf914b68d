"""How closely optimize_day keeps to its time limit, and how soon a cancel stops it.

    export DATABASE_URL=postgresql://...   # a scratch database migrated to head
    python bench/optimizer_limits.py                  # about 3 min on 2 cores
    python bench/optimizer_limits.py --runs 5 --json /tmp/limits.json
    python bench/optimizer_limits.py --quick          # small cases, a few seconds

Each case is a restaurant (``import_layout``) with one local day of bookings made with
``create_booking`` and not processed: every booking waits for tables, so the solver gets the
largest model the day can give. On one connection, a first call loads the solver and SciPy
(reported on its own); then ``optimize_day`` runs ``--runs`` times with each time limit, and
the median and worst time seen by the client are printed against the limit. Last, the cancel
latency: calls with the longest limit (600,000 ms) under ``statement_timeout``, from the
timeout to the error. The restaurants are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from control.db import database_url  # noqa: E402

TIMEZONE = "Europe/Rome"
# The statement_timeout of the cancel runs, and the longest limit optimize_day accepts.
CANCEL_AFTER_MS = 1000
LONGEST_LIMIT_MS = 600_000
TURN_PARTIES = (1, 2, 2, 2, 3, 4, 4, 5, 6, 8)


@dataclass
class Case:
    """A restaurant and day. ``layouts``: (neighbours of a table, max_combination_size) to
    try in turn, the first the database accepts used; neighbours None is rows of five tables
    with neighbours adjacent."""

    name: str
    tables: int
    bookings: int
    layouts: tuple[tuple[int | None, int], ...]
    limits: tuple[int, ...]
    cancel: bool = False
    restaurant_id: int = 0
    day: str = ""
    note: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)


def layout(
    name: str, tables: int, neighbours: int | None, combination_size: int, seed: int
) -> dict[str, Any]:
    """2-, 4- and 6-tops: in rows of five with neighbours adjacent, or in a ring where each
    table is adjacent to the ``neighbours`` nearest (all the others when that is more)."""
    rng = random.Random(seed)
    specs = []
    for i in range(tables):
        seats = rng.choice([2, 2, 4, 4, 6])
        specs.append(
            {
                "label": f"T{i}",
                "min_capacity": 1 if seats == 2 else seats // 2,
                "max_capacity": seats,
            }
        )
    if neighbours is None:
        pairs = [[f"T{i}", f"T{i + 1}"] for i in range(tables - 1) if i % 5 != 4]
    elif neighbours >= tables - 1:
        pairs = [[f"T{i}", f"T{j}"] for i in range(tables) for j in range(i + 1, tables)]
    else:
        pairs = [
            [f"T{i}", f"T{(i + step) % tables}"]
            for i in range(tables)
            for step in range(1, neighbours // 2 + 1)
        ]
    return {
        "name": name,
        "timezone": TIMEZONE,
        "settings": {"buffer_minutes": 15, "max_combination_size": combination_size},
        "tables": specs,
        "adjacency": pairs,
    }


def build(conn: psycopg.Connection[Any], case: Case, seed: int) -> None:
    """The case's restaurant and day: the first of its layouts the database accepts (the
    layout limits refuse too many neighbours or combinations); ``note`` tells of the others."""
    row = None
    refused = []
    for neighbours, size in case.layouts:
        document = layout(f"Limits: {case.name}", case.tables, neighbours, size, seed)
        try:
            with conn.transaction():
                row = conn.execute(
                    "select (allocator.import_layout(%s::jsonb) ->> 'restaurant_id')::bigint",
                    (json.dumps(document),),
                ).fetchone()
            break
        except psycopg.Error as exc:
            if exc.sqlstate not in ("RA001", "RA012") or (neighbours, size) == case.layouts[-1]:
                raise
            refused.append(
                f"{describe(case.tables, neighbours, size)} refused: {exc.diag.message_primary}"
            )
    assert row is not None
    case.restaurant_id = int(row[0])
    if refused:
        case.note = "; ".join([*refused, f"used {describe(case.tables, neighbours, size)}"])
    day = conn.execute("select ((now() at time zone %s)::date + 7)::text", (TIMEZONE,)).fetchone()
    assert day is not None
    case.day = str(day[0])
    rng = random.Random(seed)
    parties = [rng.choice(TURN_PARTIES) for _ in range(case.bookings)]
    minutes = [rng.randrange(11 * 60, 22 * 60, 15) for _ in range(case.bookings)]
    conn.execute(
        """select allocator.create_booking(
                    %s, p, (%s::date + m * interval '1 minute') at time zone %s)
             from unnest(%s::int[], %s::int[]) as x(p, m)""",
        (case.restaurant_id, case.day, TIMEZONE, parties, minutes),
    )


def describe(tables: int, neighbours: int | None, size: int) -> str:
    if neighbours is None:
        adjacency = "rows of five"
    elif neighbours >= tables - 1:
        adjacency = "every pair adjacent"
    else:
        adjacency = f"{neighbours} neighbours a table"
    return f"{adjacency}, combinations of up to {size} tables"


def call(conn: psycopg.Connection[Any], case: Case, limit_ms: int) -> dict[str, Any]:
    started = time.perf_counter()
    row = conn.execute(
        "select allocator.optimize_day(%s, %s::date, %s)", (case.restaurant_id, case.day, limit_ms)
    ).fetchone()
    elapsed = (time.perf_counter() - started) * 1000
    assert row is not None
    plan: dict[str, Any] = row[0]
    return {
        "limit_ms": limit_ms,
        "elapsed_ms": round(elapsed, 1),
        "call_ms": plan["call_ms"],
        "solver": plan["solver"],
        "status": plan["status"],
        "covers_after": plan["covers_after"],
        "combinations_unread": plan.get("combinations_unread", 0),
    }


def cancel_latency(url: str, case: Case) -> float:
    """Milliseconds from statement_timeout firing to the error reaching the client."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"set statement_timeout = {CANCEL_AFTER_MS}")
        started = time.perf_counter()
        try:
            conn.execute(
                "select allocator.optimize_day(%s, %s::date, %s)",
                (case.restaurant_id, case.day, LONGEST_LIMIT_MS),
            )
        except psycopg.errors.QueryCanceled:
            return (time.perf_counter() - started) * 1000 - CANCEL_AFTER_MS
    raise RuntimeError(f"{case.name}: optimize_day returned before statement_timeout")


ROWS: tuple[tuple[int | None, int], ...] = ((None, 3),)
# Every pair adjacent (neighbours past the table count), else as dense as the layout limits
# allow: 8 neighbours a table, combinations of up to 4 tables.
DENSE: tuple[tuple[int | None, int], ...] = ((10**6, 3), (8, 4), (8, 3), (4, 3))


def cases(quick: bool) -> list[Case]:
    if quick:
        return [
            Case("12 tables, 150 bookings", 12, 150, ROWS, (100, 500), cancel=True),
            Case("15 tables, dense adjacency, 40 bookings", 15, 40, ((8, 3),), (200,)),
        ]
    return [
        Case("30 tables, 600 bookings", 30, 600, ROWS, (100, 200, 500, 2000), cancel=True),
        Case("30 tables, 2,000 bookings", 30, 2000, ROWS, (500, 2000), cancel=True),
        Case(
            "100 tables, dense adjacency, 100 bookings", 100, 100, DENSE, (500, 2000), cancel=True
        ),
    ]


def machine(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    version = conn.execute("show server_version").fetchone()
    return {"nproc": os.cpu_count(), "postgresql": version[0] if version else None}


def median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/optimizer_limits.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--runs", type=int, default=3, help="calls per limit (default 3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small cases, a few seconds")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    url = database_url()
    report: dict[str, Any] = {"runs": args.runs, "seed": args.seed, "cases": []}
    with psycopg.connect(url, autocommit=True) as conn:
        report["machine"] = machine(conn)
        built = cases(args.quick)
        try:
            for case in built:
                started = time.perf_counter()
                build(conn, case, args.seed)
                combinations = conn.execute(
                    "select count(*) from allocator.table_combinations where restaurant_id = %s",
                    (case.restaurant_id,),
                ).fetchone()
                entry: dict[str, Any] = {
                    "case": case.name,
                    "tables": case.tables,
                    "bookings": case.bookings,
                    "combinations": combinations[0] if combinations else None,
                    "build_s": round(time.perf_counter() - started, 1),
                    "note": case.note,
                }
                # A new connection, so that the first call loads the solver and SciPy.
                with psycopg.connect(url, autocommit=True) as fresh:
                    entry["first_call"] = call(fresh, case, case.limits[-1])
                    for limit in case.limits:
                        runs = [call(fresh, case, limit) for _ in range(args.runs)]
                        elapsed = [r["elapsed_ms"] for r in runs]
                        case.results.append(
                            {
                                "limit_ms": limit,
                                "median_ms": median(elapsed),
                                "max_ms": max(elapsed),
                                "median_ratio": round(median(elapsed) / limit, 3),
                                "max_ratio": round(max(elapsed) / limit, 3),
                                "solver": sorted({r["solver"] for r in runs}),
                                "status": sorted({r["status"] for r in runs}),
                                "covers_after": sorted({r["covers_after"] for r in runs}),
                                "combinations_unread": max(r["combinations_unread"] for r in runs),
                            }
                        )
                entry["limits"] = case.results
                if case.cancel:
                    latencies = [cancel_latency(url, case) for _ in range(args.runs)]
                    entry["cancel_latency_ms"] = {
                        "statement_timeout_ms": CANCEL_AFTER_MS,
                        "time_limit_ms": LONGEST_LIMIT_MS,
                        "median": median(latencies),
                        "max": round(max(latencies), 1),
                    }
                report["cases"].append(entry)
                print_case(entry)
        finally:
            for case in built:
                if case.restaurant_id:
                    conn.execute("select allocator.delete_restaurant(%s)", (case.restaurant_id,))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def print_case(entry: dict[str, Any]) -> None:
    print(
        f"{entry['case']}: {entry['tables']} tables, {entry['combinations']} combinations, "
        f"{entry['bookings']} bookings (built in {entry['build_s']} s)"
        + (f" [{entry['note']}]" if entry["note"] else "")
    )
    first = entry["first_call"]
    print(
        f"  first call of a session, limit {first['limit_ms']} ms: {first['elapsed_ms']} ms"
        " (loads the solver and SciPy)"
    )
    print("  limit ms | median ms | worst ms | median/limit | worst/limit | solver | status")
    for r in entry["limits"]:
        print(
            f"  {r['limit_ms']:>8} | {r['median_ms']:>9} | {r['max_ms']:>8} | "
            f"{r['median_ratio']:>12} | {r['max_ratio']:>11} | {'/'.join(r['solver'])} | "
            f"{'/'.join(r['status'])}"
            + (
                f" | {r['combinations_unread']} combinations unread"
                if r["combinations_unread"]
                else ""
            )
        )
    if "cancel_latency_ms" in entry:
        c = entry["cancel_latency_ms"]
        print(
            f"  statement_timeout {c['statement_timeout_ms']} ms on a {c['time_limit_ms']} ms"
            f" limit: cancelled {c['median']} ms after the timeout (median; worst {c['max']} ms)"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
