"""Racers: many sessions calling the public RPCs at the same moment for the same few tables.

    python bench/racers.py [--sessions 32] [--rounds 12] [--json]

One restaurant with four tables (T1+T2 and T3+T4 combinable). Each round creates one booking
per session, all for the same evening (a new day each round), then every session waits at a
barrier and makes one call at once:

* ``hold``: ``hold_tables`` on a table set drawn from T1, T2, T3, T4, T1+T2 and T3+T4;
* ``process``: ``process_booking``, with ``flags.max_parallel`` raised to 64 so that no
  permit stops a session before it reaches the tables.

It prints, per mode, the calls' durations (median, P95, P99, max, calls over 1 s), their
outcomes, the deadlocks PostgreSQL counted in the database meanwhile
(``pg_stat_database.deadlocks``, read after every racer has disconnected, so that their
counts are flushed) and the invariant violations of the restaurant afterwards. It uses
``DATABASE_URL``, else the embedded cluster; the database must be migrated to head. The
restaurant is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/racers.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from control.db import database_url

TABLE_SETS = [["T1"], ["T2"], ["T3"], ["T4"], ["T1", "T2"], ["T3", "T4"]]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def create_restaurant(conn: psycopg.Connection[Any]) -> tuple[int, dict[str, int]]:
    """The four-table restaurant and its tables' ids by label."""
    layout = {
        "name": "bench racers",
        "timezone": "Europe/Rome",
        "tables": [{"label": f"T{i}", "max_capacity": 4} for i in range(1, 5)],
        "adjacency": [["T1", "T2"], ["T3", "T4"]],
    }
    row = conn.execute(
        "select allocator.import_layout(%s::jsonb)", (json.dumps(layout),)
    ).fetchone()
    assert row is not None
    rid = int(row[0]["restaurant_id"])
    conn.execute(
        "select allocator.update_settings(%s, %s::jsonb)",
        (rid, json.dumps({"flags": {"max_parallel": 64}})),
    )
    tables = dict(
        conn.execute(
            "select label, id from allocator.tables where restaurant_id = %s", (rid,)
        ).fetchall()
    )
    return rid, tables


def deadlocks(conn: psycopg.Connection[Any]) -> int:
    """Deadlocks PostgreSQL has counted in this database."""
    row = conn.execute(
        "select deadlocks from pg_stat_database where datname = current_database()"
    ).fetchone()
    return int(row[0]) if row else 0


def call(
    conn: psycopg.Connection[Any],
    mode: str,
    booking_id: int,
    table_ids: list[int],
    worker: str,
    barrier: threading.Barrier,
) -> tuple[float, str]:
    """One racer's call, made once every racer is at the barrier: (milliseconds, outcome)."""
    barrier.wait()
    start = time.perf_counter()
    try:
        if mode == "hold":
            conn.execute(
                "select allocator.hold_tables(%s, %s::bigint[], 60)", (booking_id, table_ids)
            )
            outcome = "held"
        else:
            row = conn.execute(
                "select allocator.process_booking(%s, %s)", (booking_id, worker)
            ).fetchone()
            assert row is not None
            outcome = str(row[0].get("outcome"))
            if row[0].get("reason"):
                outcome += f" {row[0]['reason']}"
    except psycopg.Error as exc:
        outcome = f"error {exc.sqlstate}"
    return (time.perf_counter() - start) * 1000, outcome


def race(
    url: str, mode: str, rid: int, tables: dict[str, int], sessions: int, rounds: int, seed: int
) -> dict[str, Any]:
    """``rounds`` rounds of ``sessions`` simultaneous calls; durations and outcomes."""
    rng = random.Random(seed)
    durations: list[float] = []
    outcomes: Counter[str] = Counter()
    with psycopg.connect(url, autocommit=True) as admin:
        before = deadlocks(admin)
        day_offset = admin.execute(
            "select coalesce(max(lower(period))::date - current_date, 0) + 2"
            " from allocator.bookings where restaurant_id = %s",
            (rid,),
        ).fetchone()
        assert day_offset is not None
        first_day = int(day_offset[0])
        conns = [psycopg.connect(url, autocommit=True) for _ in range(sessions)]
        try:
            for round_no in range(rounds):
                ids = []
                for _ in range(sessions):
                    row = admin.execute(
                        "select (allocator.create_booking(%s, 2,"
                        " (current_date + %s)::timestamp at time zone 'Europe/Rome'"
                        " + interval '20 hours', 120) ->> 'booking_id')::bigint",
                        (rid, first_day + round_no),
                    ).fetchone()
                    assert row is not None
                    ids.append(int(row[0]))
                sets = [[tables[t] for t in rng.choice(TABLE_SETS)] for _ in range(sessions)]
                barrier = threading.Barrier(sessions)

                with ThreadPoolExecutor(sessions) as pool:
                    futures = [
                        pool.submit(call, conns[i], mode, ids[i], sets[i], f"racer-{i}", barrier)
                        for i in range(sessions)
                    ]
                    for future in futures:
                        elapsed, outcome = future.result()
                        durations.append(elapsed)
                        outcomes[outcome] += 1
        finally:
            for conn in conns:
                conn.close()
        time.sleep(0.2)
        after = deadlocks(admin)
        violations = admin.execute(
            "select count(*) from allocator.check_invariants() where restaurant_id = %s", (rid,)
        ).fetchone()
    assert violations is not None
    return {
        "mode": mode,
        "sessions": sessions,
        "rounds": rounds,
        "calls": len(durations),
        "median_ms": round(statistics.median(durations), 1),
        "p95_ms": round(percentile(durations, 95), 1),
        "p99_ms": round(percentile(durations, 99), 1),
        "max_ms": round(max(durations), 1),
        "over_1s": sum(1 for d in durations if d > 1000),
        "outcomes": dict(outcomes),
        "deadlocks": after - before,
        "invariant_violations": int(violations[0]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run both modes and print (or with --json, write to stdout) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--mode", choices=["hold", "process", "both"], default="both")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 2 <= args.sessions <= 90 or not 1 <= args.rounds <= 1000:
        parser.error("--sessions must be from 2 to 90 and --rounds from 1 to 1000")
    url = database_url()
    with psycopg.connect(url, autocommit=True) as conn:
        rid, tables = create_restaurant(conn)
    results = []
    try:
        modes = ["hold", "process"] if args.mode == "both" else [args.mode]
        for mode in modes:
            results.append(race(url, mode, rid, tables, args.sessions, args.rounds, args.seed))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("select allocator.delete_restaurant(%s)", (rid,))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(
                f"{r['mode']:8} {r['calls']} calls: median {r['median_ms']} ms, "
                f"P95 {r['p95_ms']} ms, P99 {r['p99_ms']} ms, max {r['max_ms']} ms, "
                f"over 1 s {r['over_1s']}; deadlocks {r['deadlocks']}; "
                f"violations {r['invariant_violations']}; outcomes {r['outcomes']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
