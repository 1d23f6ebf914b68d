"""The outbox horizon (allocator.events_horizon): subscribers read the events of every
transaction that can no longer commit an earlier one. A transaction still running in this
database holds them back (a late commit is never skipped); one running in another database of
the cluster does not (it writes no event here)."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from tests.conftest import maintenance_url


def booking(conn: psycopg.Connection[Any], restaurant_id: int) -> int:
    row = conn.execute(
        "select (allocator.create_booking(%s, 2, now() + interval '2 days') ->> 'booking_id')::bigint",
        (restaurant_id,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def read(conn: psycopg.Connection[Any], subscriber: str) -> list[int]:
    rows = conn.execute(
        "select booking_id from allocator.read_events(%s, 10000) where topic = 'booking.created'",
        (subscriber,),
    ).fetchall()
    return [r[0] for r in rows]


def read_until(conn: psycopg.Connection[Any], subscriber: str, booking_id: int) -> list[int]:
    """What the subscriber reads until it has read ``booking_id`` (10 s at most): another
    session's short transaction in this database (a scheduled sweep, another test's) may
    hold the horizon for a moment."""
    seen: list[int] = []
    deadline = time.monotonic() + 10
    while booking_id not in seen and time.monotonic() < deadline:
        seen += read(conn, subscriber)
        time.sleep(0.05)
    return seen


def test_only_transactions_of_this_database_hold_the_horizon(db_url: str) -> None:
    with (
        psycopg.connect(db_url, autocommit=True) as conn,
        psycopg.connect(maintenance_url()) as elsewhere,
        psycopg.connect(db_url) as here,
    ):
        row = conn.execute(
            """select allocator.import_layout('{"name": "Horizon", "tables": [{"label": "H1", "max_capacity": 4}]}')
                      ->> 'restaurant_id'"""
        ).fetchone()
        assert row is not None
        rid = int(row[0])
        while read(conn, "horizon"):  # the cursor starts after everything before
            pass
        # A transaction with an id, left open in another database of the cluster.
        elsewhere.execute("select pg_current_xact_id()")
        first = booking(conn, rid)
        assert first in read_until(conn, "horizon", first), (
            "another database's transaction holds nothing back"
        )
        # One left open in this database: later events wait until it ends.
        here.execute("select pg_current_xact_id()")
        second = booking(conn, rid)
        assert second not in read(conn, "horizon"), "a transaction here may still commit events"
        here.rollback()
        assert read_until(conn, "horizon", second) == [second]
        elsewhere.rollback()
