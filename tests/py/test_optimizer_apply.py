"""optimize_day and apply on a busy day of the sample restaurant, after the online engine:
the applied plan never overlaps and seats every party on tables that fit it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]


def test_apply_a_plan_after_the_online_engine(db_url: str) -> None:
    layout = json.loads((ROOT / "data" / "sample_restaurant.json").read_text())
    layout["name"] = "Optimizer day"
    layout["settings"]["retry"] = {"max_attempts": 1}
    rng = random.Random(11)
    with psycopg.connect(db_url, autocommit=True) as conn:
        rid = conn.execute(
            "select (allocator.import_layout(%s::jsonb) ->> 'restaurant_id')::bigint",
            (json.dumps(layout),),
        ).fetchone()[0]  # type: ignore[index]
        (day,) = conn.execute("select (now() at time zone 'Europe/Rome')::date + 3").fetchone()  # type: ignore[misc]
        for _ in range(120):
            party = rng.choices([1, 2, 3, 4, 5, 6, 8, 10], [8, 45, 10, 18, 5, 7, 4, 3])[0]
            minute = rng.randrange(17 * 60, 22 * 60, 15)
            (booking_id,) = conn.execute(
                "select (allocator.create_booking(%s, %s, (%s::date + %s * interval '1 minute') at time zone 'Europe/Rome')"
                " ->> 'booking_id')::bigint",
                (rid, party, day, minute),
            ).fetchone()  # type: ignore[misc]
            conn.execute("select allocator.process_booking(%s, 'online')", (booking_id,))
        before = conn.execute(
            "select count(*) filter (where state = 'confirmed'), coalesce(sum(party_size) filter (where state = 'confirmed'), 0)"
            " from allocator.bookings where restaurant_id = %s",
            (rid,),
        ).fetchone()
        assert before is not None

    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "control.cli",
            "optimize",
            "--restaurant",
            str(rid),
            "--date",
            str(day),
            "--apply",
            "--min-improvement",
            "0",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    summary, applied = (json.loads(line) for line in cli.stdout.splitlines()[:2])
    assert summary["covers_after"] >= summary["covers_before"]
    assert applied["status"] in ("applied", "nothing_to_do"), applied

    with psycopg.connect(db_url) as conn:
        after = conn.execute(
            "select count(*) filter (where state = 'confirmed'), coalesce(sum(party_size) filter (where state = 'confirmed'), 0)"
            " from allocator.bookings where restaurant_id = %s",
            (rid,),
        ).fetchone()
        overlaps = conn.execute(
            "select count(*) from allocator.allocations a join allocator.allocations b on a.restaurant_id = b.restaurant_id"
            " and a.table_id = b.table_id and a.id < b.id and a.period && b.period where a.restaurant_id = %s",
            (rid,),
        ).fetchone()
        misfits = conn.execute(
            """select count(*) from allocator.bookings bk where bk.restaurant_id = %s and bk.state = 'confirmed'
                 and not exists (select 1 from allocator.allocations a join allocator.tables t
                                   on t.restaurant_id = a.restaurant_id and t.id = a.table_id
                                  where a.restaurant_id = bk.restaurant_id and a.booking_id = bk.id
                                 having bk.party_size between sum(t.min_capacity) and sum(t.max_capacity))""",
            (rid,),
        ).fetchone()
        runs = conn.execute(
            "select status, moved, seated from allocator.optimizer_runs where restaurant_id = %s",
            (rid,),
        ).fetchall()
    assert overlaps == (0,)
    assert misfits == (0,)
    assert after is not None and after[0] >= before[0] and after[1] >= before[1], (
        "nobody confirmed lost a seat"
    )
    assert after[1] == summary["covers_after"]
    assert len(runs) == 1 and runs[0][0] == applied["status"]
