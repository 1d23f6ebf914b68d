"""Races with real concurrent connections: exclusion and version guards hold under load."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import psycopg
import pytest

from control.errors import AllocatorError, Conflict, translate

RACERS = 20


def _setup(db_url: str, name: str, bookings: int) -> tuple[int, int, list[int]]:
    """A restaurant with one table and ``bookings`` overlapping bookings for it."""
    layout = {"name": name, "tables": [{"label": "ONLY", "max_capacity": 4}]}
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select allocator.import_layout(%s::jsonb)", (json.dumps(layout),))
        restaurant_id = row.fetchone()[0]["restaurant_id"]  # type: ignore[index]
        (table_id,) = conn.execute(
            "select id from allocator.tables where restaurant_id = %s", (restaurant_id,)
        ).fetchone()  # type: ignore[misc]
        ids = []
        for i in range(bookings):
            # Overlapping periods: each starts 5 minutes after the previous one.
            result = conn.execute(
                "select allocator.create_booking(%s, 2, now() + interval '1 day' + %s * interval '5 minutes', 90)",
                (restaurant_id, i),
            ).fetchone()
            ids.append(result[0]["booking_id"])  # type: ignore[index]
    return restaurant_id, table_id, ids


def _race(db_url: str, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
    """Run each call on its own connection, all released at once; results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    conns = [psycopg.connect(db_url) for _ in calls]

    def worker(i: int) -> None:
        sql, args = calls[i]
        conn = conns[i]
        barrier.wait()
        try:
            results[i] = conn.execute(sql, args).fetchone()[0]  # type: ignore[index]
            conn.commit()
        except psycopg.Error as exc:
            conn.rollback()
            results[i] = translate(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for conn in conns:
        conn.close()
    return results


def test_twenty_connections_race_for_one_table(db_url: str) -> None:
    restaurant_id, table_id, bookings = _setup(db_url, "Race for one table", RACERS)
    calls = [
        ("select allocator.hold_tables(%s, array[%s]::bigint[], 60)", (b, table_id))
        for b in bookings
    ]
    results = _race(db_url, calls)

    winners = [r for r in results if isinstance(r, dict)]
    losers = [r for r in results if isinstance(r, AllocatorError)]
    assert len(winners) == 1, results
    assert len(losers) == RACERS - 1
    assert all(isinstance(r, Conflict) and r.sqlstate == "RA003" for r in losers), losers

    winner = winners[0]["booking_id"]
    with psycopg.connect(db_url) as conn:
        allocations = conn.execute(
            "select booking_id, kind from allocator.allocations where restaurant_id = %s",
            (restaurant_id,),
        ).fetchall()
        states = Counter(
            s
            for (s,) in conn.execute(
                "select state from allocator.bookings where restaurant_id = %s", (restaurant_id,)
            ).fetchall()
        )
        assigned_history = conn.execute(
            "select booking_id from allocator.booking_state_history "
            "where restaurant_id = %s and to_state = 'assigned'",
            (restaurant_id,),
        ).fetchall()
        assigned_events = conn.execute(
            "select booking_id from allocator.events where restaurant_id = %s and topic = 'booking.assigned'",
            (restaurant_id,),
        ).fetchall()
        versions = conn.execute(
            "select count(*) from allocator.bookings b where restaurant_id = %s and version <> "
            "(select max(h.version) from allocator.booking_state_history h "
            " where h.restaurant_id = b.restaurant_id and h.booking_id = b.id)",
            (restaurant_id,),
        ).fetchone()
    assert allocations == [(winner, "hold")]
    assert states == {"assigned": 1, "created": RACERS - 1}
    assert assigned_history == [(winner,)], "history agrees: one booking was assigned"
    assert assigned_events == [(winner,)], "events agree with history"
    assert versions == (0,), "every booking's version is its last history version"


def test_concurrent_creates_with_one_idempotency_key(db_url: str) -> None:
    restaurant_id, _, _ = _setup(db_url, "Race for one key", 0)
    calls = [
        (
            "select allocator.create_booking(%s, 2, date_trunc('hour', now()) + interval '2 days', 90, 'same-key')",
            (restaurant_id,),
        )
        for _ in range(10)
    ]
    results = _race(db_url, calls)
    assert all(isinstance(r, dict) for r in results), results
    assert len({r["booking_id"] for r in results}) == 1
    assert sum(1 for r in results if r["created"]) == 1
    with psycopg.connect(db_url) as conn:
        count = conn.execute(
            "select count(*) from allocator.booking_state_history where restaurant_id = %s",
            (restaurant_id,),
        ).fetchone()
    assert count == (1,)


def test_concurrent_modifications_with_one_version(db_url: str) -> None:
    _, _, (booking,) = _setup(db_url, "Race for one version", 1)
    calls = [
        ("select allocator.modify_booking(%s, 1, p_party_size => %s)", (booking, 2 + i % 3))
        for i in range(8)
    ]
    results = _race(db_url, calls)
    ok = [r for r in results if isinstance(r, dict)]
    stale = [r for r in results if isinstance(r, AllocatorError)]
    assert len(ok) == 1
    assert len(stale) == 7 and all(r.sqlstate == "RA004" for r in stale), stale
    assert ok[0]["version"] == 2


@pytest.fixture(autouse=True)
def _enough_connections(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        (limit,) = conn.execute("show max_connections").fetchone()  # type: ignore[misc]
    assert int(limit) > RACERS + 5
