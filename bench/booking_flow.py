"""The guest-facing calls: how long ``find_slots`` for one evening and ``book`` take, at 40
tables and 300 bookings a day.

    python bench/booking_flow.py [--calls 200] [--json]

A restaurant of 40 tables (10 for two, 20 for four, 10 for six; neighbouring fours
combinable), lunch 12:00-14:30 and dinner 18:00-22:00 every day, the default turn times.
Three days are filled with 300 booked parties each (the demo's party sizes, times spread
over both services; refusals are counted, not retried). Then, from one client in autocommit
(so each figure includes the round trip and, for ``book``, the commit):

* ``find_slots`` for one evening (17:00-23:00 local) of a filled day, parties of 2 and 4;
* ``book`` at a time drawn from the slots of a fourth day, which fills as it goes.

With flexible tables (the default) it counts the guests seated by moving others and the
moves; ``--no-flexible`` books with tables fixed at booking, for comparison.

It prints the median and P95 of each. It uses ``DATABASE_URL``, else the embedded cluster;
the database must be migrated to head. The restaurant is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

if __package__ in (None, ""):  # run as a script: python bench/booking_flow.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench.pipeline import summarize
from control.db import database_url
from control.demo import PARTY_SIZES, PARTY_WEIGHTS

TIMEZONE = "Europe/Rome"


def layout() -> dict[str, Any]:
    """40 tables: 10 for two, 20 for four (pairs combinable), 10 for six."""
    tables = [{"label": f"D{i}", "max_capacity": 2, "combinable": False} for i in range(10)]
    tables += [{"label": f"Q{i}", "max_capacity": 4} for i in range(20)]
    tables += [{"label": f"S{i}", "max_capacity": 6, "combinable": False} for i in range(10)]
    adjacency = [[f"Q{i}", f"Q{i + 1}"] for i in range(0, 20, 2)]
    return {"name": "bench booking flow", "timezone": TIMEZONE, "tables": tables,
            "adjacency": adjacency}  # fmt: skip


def local(day: date, hour: int, minute: int) -> datetime:
    """A local wall time of the restaurant, as an aware datetime."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(TIMEZONE))


def service_times(day: date) -> list[datetime]:
    """Every start on the grid of both services of ``day``."""
    lunch = [local(day, 12, 0) + timedelta(minutes=15 * i) for i in range(11)]
    dinner = [local(day, 18, 0) + timedelta(minutes=15 * i) for i in range(17)]
    return lunch + dinner


def timed(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any]) -> tuple[float, Any]:
    """Milliseconds and the first row (or the error's SQLSTATE)."""
    start = time.perf_counter()
    try:
        result: Any = conn.execute(sql, params).fetchall()
    except psycopg.Error as exc:
        result = exc.sqlstate
    return (time.perf_counter() - start) * 1000, result


def main(argv: Sequence[str] | None = None) -> int:
    """Fill the days, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--per-day", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--no-flexible",
        action="store_true",
        help="book with tables fixed at booking (flexible_tables.enabled false)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.calls <= 10_000 or not 1 <= args.per_day <= 1000:
        parser.error("--calls must be from 1 to 10000 and --per-day from 1 to 1000")
    rng = random.Random(args.seed)
    url = database_url()
    book_sql = "select allocator.book(%s, %s, %s)"
    slots_sql = "select count(*) from allocator.find_slots(%s, %s, %s, %s)"
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select allocator.import_layout(%s::jsonb) ->> 'restaurant_id'", (json.dumps(layout()),)
        ).fetchone()
        assert row is not None
        rid = int(row[0])
        try:
            for name, opens, last in (("lunch", "12:00", "14:30"), ("dinner", "18:00", "22:00")):
                conn.execute(
                    "select allocator.set_service(%s, %s, array[1,2,3,4,5,6,7], %s, %s)",
                    (rid, name, opens, last),
                )
            if args.no_flexible:
                conn.execute(
                    "select allocator.update_settings(%s, %s::jsonb)",
                    (rid, json.dumps({"flexible_tables": {"enabled": False}})),
                )
            today = datetime.now(ZoneInfo(TIMEZONE)).date()
            days = [today + timedelta(days=d) for d in (3, 4, 5)]
            fill: Counter[str] = Counter()
            for day in days:
                times = service_times(day)
                for _ in range(args.per_day):
                    party = rng.choices(PARTY_SIZES, PARTY_WEIGHTS)[0]
                    _, result = timed(conn, book_sql, (rid, party, rng.choice(times)))
                    fill["confirmed" if isinstance(result, list) else str(result)] += 1
            slot_ms = []
            for i in range(args.calls):
                day = days[i % len(days)]
                ms, _ = timed(
                    conn,
                    slots_sql,
                    (rid, 2 + 2 * (i % 2), local(day, 17, 0), local(day, 23, 0)),
                )
                slot_ms.append(ms)
            book_ms = []
            outcomes: Counter[str] = Counter()
            target = today + timedelta(days=6)
            times = service_times(target)
            for _ in range(args.calls):
                party = rng.choices(PARTY_SIZES, PARTY_WEIGHTS)[0]
                ms, result = timed(conn, book_sql, (rid, party, rng.choice(times)))
                book_ms.append(ms)
                outcomes["confirmed" if isinstance(result, list) else str(result)] += 1
            row = conn.execute(
                """select count(*) filter (where strategy = 'flexible_tables'),
                          count(*) filter (where reason like 'moved to seat booking %%')
                     from (select a.strategy, null as reason
                             from allocator.booking_assignment_attempts a
                            where a.restaurant_id = %s
                           union all
                           select null, h.reason from allocator.booking_state_history h
                            where h.restaurant_id = %s) x""",
                (rid, rid),
            ).fetchone()
            assert row is not None
            seated_by_moving, moves = int(row[0]), int(row[1])
            row = conn.execute(
                """select count(*), coalesce(sum(party_size), 0) from allocator.bookings
                    where restaurant_id = %s and state = 'confirmed'""",
                (rid,),
            ).fetchone()
            assert row is not None
            parties, covers = int(row[0]), int(row[1])
        finally:
            conn.execute("select allocator.delete_restaurant(%s)", (rid,))
    figures = {
        "run": datetime.now(UTC).isoformat(timespec="seconds"),
        "tables": 40,
        "booked_per_day": args.per_day,
        "fill_outcomes": dict(fill),
        "find_slots_ms": summarize(slot_ms, 2),
        "book_ms": summarize(book_ms, 2),
        "book_outcomes": dict(outcomes),
        "flexible_tables": not args.no_flexible,
        "confirmed_parties": parties,
        "confirmed_covers": covers,
        "seated_by_moving": seated_by_moving,
        "moves": moves,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"fill of {args.per_day} a day x 3: {dict(fill)}")
        for name in ("find_slots_ms", "book_ms"):
            f = figures[name]
            print(
                f"{name[:-3]:10} n {f['n']}: median {f['p50']} ms, P95 {f['p95']} ms, "
                f"max {f['max']}"
            )
        print(f"book outcomes: {dict(outcomes)}")
        print(f"confirmed over the 4 days: {parties} parties, {covers} covers")
        print(f"seated by moving others: {seated_by_moving} ({moves} moves)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
