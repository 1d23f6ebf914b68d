"""The engine under real concurrency: 4 connections claim and process 200 bookings on the
sample restaurant; nothing is double-booked or worked by two at once."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[2]
BOOKINGS = 200
WORKERS = 4


def _load_sample(conn: psycopg.Connection[Any], name: str) -> int:
    layout = json.loads((ROOT / "data" / "sample_restaurant.json").read_text())
    layout["name"] = name
    # Fast retries so bookings that find no table reach a terminal state quickly.
    layout["settings"]["retry"] = {"max_attempts": 3, "base_delay_ms": 20, "max_delay_ms": 100}
    row = conn.execute(
        "select allocator.import_layout(%s::jsonb)", (json.dumps(layout),)
    ).fetchone()
    assert row is not None
    return int(row[0]["restaurant_id"])


def _worker(
    db_url: str, name: str, restaurant_id: int, deadline: float, errors: list[BaseException]
) -> None:
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                claimed = conn.execute(
                    "select booking_id from allocator.claim_due(%s, 5) where restaurant_id = %s",
                    (name, restaurant_id),
                ).fetchall()
                if not claimed:
                    open_left = conn.execute(
                        "select count(*) from allocator.bookings where restaurant_id = %s "
                        "and not allocator.is_settled(state)",
                        (restaurant_id,),
                    ).fetchone()
                    if open_left == (0,):
                        return
                    time.sleep(0.01)
                    continue
                for (booking_id,) in claimed:
                    conn.execute("select allocator.process_booking(%s, %s)", (booking_id, name))
    except BaseException as exc:  # surfaced by the test
        errors.append(exc)


def test_four_workers_two_hundred_bookings(db_url: str) -> None:
    rng = random.Random(7)
    with psycopg.connect(db_url) as conn:
        restaurant_id = _load_sample(conn, "Engine concurrency")
        for i in range(BOOKINGS):
            party = rng.choices(
                [1, 2, 3, 4, 5, 6, 8, 10, 16], weights=[10, 45, 10, 15, 5, 6, 4, 3, 2]
            )[0]
            minute = rng.randrange(0, 12 * 60, 15)
            conn.execute(
                "select allocator.create_booking(%s, %s, date_trunc('day', now()) + interval '2 days 11 hours' "
                "+ %s * interval '1 minute', p_idempotency_key => %s)",
                (restaurant_id, party, minute, f"c{i}"),
            )
        conn.commit()

    errors: list[BaseException] = []
    deadline = time.monotonic() + 60
    threads = [
        threading.Thread(target=_worker, args=(db_url, f"w{i}", restaurant_id, deadline, errors))
        for i in range(WORKERS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors

    with psycopg.connect(db_url) as conn:
        states = dict(
            conn.execute(
                "select state, count(*) from allocator.bookings where restaurant_id = %s group by state",
                (restaurant_id,),
            ).fetchall()
        )
        # Two workers on one booking at once would show as attempts of one booking, from
        # different backends, whose [started, finished] intervals overlap.
        overlapping_work = conn.execute(
            """select count(*) from allocator.booking_assignment_attempts a
                 join allocator.booking_assignment_attempts b
                   on a.restaurant_id = b.restaurant_id and a.booking_id = b.booking_id and a.id < b.id
                  and a.metadata ->> 'backend_pid' <> b.metadata ->> 'backend_pid'
                  and tstzrange((a.metadata ->> 'started_at')::timestamptz, (a.metadata ->> 'finished_at')::timestamptz, '[]')
                   && tstzrange((b.metadata ->> 'started_at')::timestamptz, (b.metadata ->> 'finished_at')::timestamptz, '[]')
                where a.restaurant_id = %s""",
            (restaurant_id,),
        ).fetchone()
        overlaps = conn.execute(
            """select count(*) from allocator.allocations a join allocator.allocations b
                 on a.restaurant_id = b.restaurant_id and a.table_id = b.table_id and a.id < b.id
                and a.period && b.period where a.restaurant_id = %s""",
            (restaurant_id,),
        ).fetchone()
        misfits = conn.execute(
            """select count(*) from allocator.bookings bk
                where bk.restaurant_id = %s and bk.state = 'confirmed'
                  and not exists (
                    select 1 from allocator.allocations a join allocator.tables t
                      on t.restaurant_id = a.restaurant_id and t.id = a.table_id
                     where a.restaurant_id = bk.restaurant_id and a.booking_id = bk.id and a.kind = 'confirmed'
                    having bk.party_size between sum(t.min_capacity) and sum(t.max_capacity))""",
            (restaurant_id,),
        ).fetchone()
        attempts = conn.execute(
            "select count(*), count(distinct metadata ->> 'backend_pid') from allocator.booking_assignment_attempts where restaurant_id = %s",
            (restaurant_id,),
        ).fetchone()

        stuck = conn.execute(
            """select b.id, b.state, b.version, q.run_at, q.leased_by, q.lease_expires_at, q.reason,
                      (select array_agg(h.to_state || ':' || coalesce(h.reason, '') order by h.version)
                         from allocator.booking_state_history h where h.booking_id = b.id)
                 from allocator.bookings b left join allocator.assignment_queue q
                   on q.restaurant_id = b.restaurant_id and q.booking_id = b.id
                where b.restaurant_id = %s and b.state not in ('confirmed', 'manual_review')""",
            (restaurant_id,),
        ).fetchall()

        violations = conn.execute("select * from allocator.check_invariants()").fetchall()

    assert violations == []
    assert sum(states.values()) == BOOKINGS
    assert set(states) <= {"confirmed", "manual_review"}, (states, stuck)
    assert states.get("confirmed", 0) > BOOKINGS // 2, states
    assert overlapping_work == (0,)
    assert overlaps == (0,)
    assert misfits == (0,)
    assert attempts is not None and attempts[0] >= BOOKINGS and attempts[1] >= 2, (
        "work was shared between connections"
    )
