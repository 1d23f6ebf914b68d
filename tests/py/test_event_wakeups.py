"""Which events wake the workers: a booking put on the queue does, one `book` confirmed in the
transaction that created it does not (nothing is left for a worker to do)."""

from __future__ import annotations

import time
from typing import Any

import psycopg


def notified_bookings(
    listener: psycopg.Connection[Any], reader: psycopg.Connection[Any], seconds: float
) -> set[int]:
    """The bookings whose events NOTIFYed allocator_events within ``seconds``."""
    ids = [int(n.payload) for n in listener.notifies(timeout=seconds)]
    rows = reader.execute(
        "select booking_id from allocator.events where id = any(%s) and booking_id is not null",
        (ids,),
    ).fetchall()
    return {int(r[0]) for r in rows}


def test_only_queued_bookings_wake_the_workers(db_url: str) -> None:
    with (
        psycopg.connect(db_url, autocommit=True) as conn,
        psycopg.connect(db_url, autocommit=True) as listener,
    ):
        row = conn.execute(
            """select allocator.import_layout('{"name": "Wakeups", "tables": [{"label": "W1", "max_capacity": 4},
                                                {"label": "W2", "max_capacity": 4}]}') ->> 'restaurant_id'"""
        ).fetchone()
        assert row is not None
        rid = int(row[0])
        conn.execute(
            "select allocator.set_service(%s, 'all day', array[1,2,3,4,5,6,7], '00:00', '23:45')",
            (rid,),
        )
        listener.execute("listen allocator_events")
        start = conn.execute("select date_trunc('hour', now()) + interval '2 days'").fetchone()[0]  # type: ignore[index]
        booked = conn.execute("select allocator.book(%s, 2, %s)", (rid, start)).fetchone()[0]  # type: ignore[index]
        assert booked["state"] == "confirmed"
        created = conn.execute(
            "select (allocator.create_booking(%s, 2, %s) ->> 'booking_id')::bigint", (rid, start)
        ).fetchone()[0]  # type: ignore[index]
        seen: set[int] = set()
        deadline = time.monotonic() + 10
        while created not in seen and time.monotonic() < deadline:
            seen |= notified_bookings(listener, conn, 0.5)
        assert created in seen, "a queued booking wakes the workers"
        assert int(booked["booking_id"]) not in seen, "a booking confirmed at once does not"
        row = conn.execute(
            "select payload -> 'queued' from allocator.events where booking_id = %s and topic = 'booking.created'",
            (booked["booking_id"],),
        ).fetchone()
        assert row == (False,)
