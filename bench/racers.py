"""Racers: many sessions calling the public RPCs at the same moment for the same few tables.

    python bench/racers.py [--sessions 32] [--rounds 12] [--json]

Each round creates a restaurant with four tables (T1+T2 and T3+T4 combinable) and one booking
per session, all for the same evening, then every session waits at a barrier and makes one
call at once (a first round, not counted, warms the sessions up, as a pool's connections are):

* ``hold``: ``hold_tables`` on a table set drawn from T1, T2, T3, T4, T1+T2 and T3+T4;
* ``process``: ``process_booking``, with ``flags.max_parallel`` raised to 64 so that no
  permit stops a session before it reaches the tables.

It prints, per mode, the calls' durations (median, P95, P99, max, calls over 1 s), their
outcomes, the deadlocks PostgreSQL counted in the database meanwhile
(``pg_stat_database.deadlocks``, read after every racer has disconnected, so that their
counts are flushed) and the invariant violations of the restaurants afterwards. It uses
``DATABASE_URL``, else the embedded cluster; the database must be migrated to head. The
restaurants are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import random
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

from bench.pipeline import summarize
from control.db import database_url

TABLE_SETS = [["T1"], ["T2"], ["T3"], ["T4"], ["T1", "T2"], ["T3", "T4"]]


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


def race(url: str, mode: str, sessions: int, rounds: int, seed: int) -> dict[str, Any]:
    """A warm-up round, then ``rounds`` rounds of ``sessions`` simultaneous calls, each round
    on a restaurant of its own (so that its circuit breaker starts closed); durations and
    outcomes of the measured rounds."""
    rng = random.Random(seed)
    durations: list[float] = []
    outcomes: Counter[str] = Counter()
    restaurants: list[int] = []
    violations = 0
    with psycopg.connect(url, autocommit=True) as admin:
        before = deadlocks(admin)
        conns = [psycopg.connect(url, autocommit=True) for _ in range(sessions)]
        try:
            for round_no in range(rounds + 1):
                rid, tables = create_restaurant(admin)
                restaurants.append(rid)
                ids = []
                for _ in range(sessions):
                    row = admin.execute(
                        "select (allocator.create_booking(%s, 2,"
                        " (current_date + 2)::timestamp at time zone 'Europe/Rome'"
                        " + interval '20 hours', 120) ->> 'booking_id')::bigint",
                        (rid,),
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
                    results = [future.result() for future in futures]
                if round_no == 0:
                    continue  # the warm-up: every session has planned its statements once
                for elapsed, outcome in results:
                    durations.append(elapsed)
                    outcomes[outcome] += 1
        finally:
            for conn in conns:
                conn.close()
            time.sleep(0.2)
            after = deadlocks(admin)
            for rid in restaurants:
                row = admin.execute(
                    "select count(*) from allocator.check_invariants() where restaurant_id = %s",
                    (rid,),
                ).fetchone()
                violations += int(row[0]) if row else 0
                admin.execute("select allocator.delete_restaurant(%s)", (rid,))
    return {
        "mode": mode,
        "sessions": sessions,
        "rounds": rounds,
        "calls": len(durations),
        "latency_ms": summarize(durations),
        "over_1s": sum(1 for d in durations if d > 1000),
        "outcomes": dict(outcomes),
        "deadlocks": after - before,
        "invariant_violations": violations,
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
    modes = ["hold", "process"] if args.mode == "both" else [args.mode]
    results = [race(url, mode, args.sessions, args.rounds, args.seed) for mode in modes]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(
                f"{r['mode']:8} {r['calls']} calls: median {r['latency_ms']['p50']} ms, "
                f"P95 {r['latency_ms']['p95']} ms, P99 {r['latency_ms']['p99']} ms, "
                f"max {r['latency_ms']['max']} ms, "
                f"over 1 s {r['over_1s']}; deadlocks {r['deadlocks']}; "
                f"violations {r['invariant_violations']}; outcomes {r['outcomes']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
