"""The engine's locks against other sessions: a login with no privileges, or only read access,
cannot stop a restaurant's engine, and bookings the engine cannot work on are counted and,
after retry.max_deferrals in a row, sent to manual review.

Every engine call runs on a connection with a 5 s statement_timeout: a call that waited for
another session's lock would fail with QueryCanceled instead of hanging the test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

NO_GRANTS = "allocator_test_hostile"
READER = "allocator_test_hostile_reader"


def login(db_url: str, name: str, member_of: str | None = None) -> str:
    """A login role (cluster-wide, created once), and a URL for it on the test database."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            f"""do $$ begin
                  create role {name} login;
                exception when duplicate_object then null;
                end $$"""
        )
        if member_of:
            conn.execute(f"grant {member_of} to {name}")
    return make_conninfo(db_url, user=name)


@pytest.fixture(scope="module")
def no_grants_url(db_url: str) -> str:
    return login(db_url, NO_GRANTS)


@pytest.fixture(scope="module")
def reader_url(db_url: str) -> str:
    return login(db_url, READER, "allocator_readonly")


@pytest.fixture
def engine(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """The worker's connection: each call a transaction of its own, never waiting long."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("set statement_timeout = '5s'")
        yield conn


def restaurant(conn: psycopg.Connection[Any], name: str, settings: dict[str, Any]) -> int:
    layout = {
        "name": name,
        "settings": {"buffer_minutes": 0, **settings},
        "tables": [{"label": f"L{i}", "max_capacity": 4} for i in range(4)],
    }
    row = conn.execute(
        "select allocator.import_layout(%s::jsonb)", (json.dumps(layout),)
    ).fetchone()
    assert row is not None
    return int(row[0]["restaurant_id"])


def book(conn: psycopg.Connection[Any], restaurant_id: int, days: list[int]) -> list[int]:
    """One booking of two for each day, a day apart, so that none competes for a table."""
    ids = []
    for day in days:
        row = conn.execute(
            "select (allocator.create_booking(%s, 2, date_trunc('hour', now()) + %s * interval '1 day', 120)"
            " ->> 'booking_id')::bigint",
            (restaurant_id, day),
        ).fetchone()
        assert row is not None
        ids.append(int(row[0]))
    return ids


def process(conn: psycopg.Connection[Any], booking: int, at_seconds: int = 0) -> dict[str, Any]:
    """process_booking in a transaction of its own, with the clock frozen at_seconds ahead
    (so that a booking put back for a while is due again)."""
    with conn.transaction():
        if at_seconds:
            conn.execute(
                "select allocator.freeze_clock(now() + %s * interval '1 second')", (at_seconds,)
            )
        row = conn.execute("select allocator.process_booking(%s, 'locks')", (booking,)).fetchone()
    assert row is not None
    return dict(row[0])


def queue_row(conn: psycopg.Connection[Any], booking: int) -> tuple[Any, ...] | None:
    return conn.execute(
        "select reason, deferrals from allocator.assignment_queue where booking_id = %s", (booking,)
    ).fetchone()


def booking_row(conn: psycopg.Connection[Any], booking: int) -> tuple[Any, ...] | None:
    return conn.execute(
        """select state, assignment_attempts, manual_review_reason,
                  (select count(*) from allocator.booking_assignment_attempts a where a.booking_id = b.id)
             from allocator.bookings b where id = %s""",
        (booking,),
    ).fetchone()


def test_a_hostile_login_cannot_stop_the_engine(
    db_url: str, no_grants_url: str, reader_url: str, engine: psycopg.Connection[Any]
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        rid = restaurant(conn, "Hostile target", {"flags": {"max_parallel": 2}})
        bookings = book(conn, rid, [2, 3, 4, 5])
    with (
        psycopg.connect(no_grants_url, autocommit=True) as hostile,
        psycopg.connect(reader_url, autocommit=True) as reader,
    ):
        # Every advisory key one could derive from the restaurant's id (a key per permit slot,
        # 64 of them) and its bookings' ids, and the bare ids in both key forms: held for the
        # session.
        (pairs,) = hostile.execute(
            """select count(pg_catalog.pg_advisory_lock(k1, k2)) from (
                 select pg_catalog.hashtext('allocator.permit') as k1,
                        ((%(rid)s::bigint * 64 + s) %% 2147483647)::integer as k2
                   from pg_catalog.generate_series(0, 63) s
                 union
                 select pg_catalog.hashtext('allocator.booking'), (b %% 2147483647)::integer
                   from pg_catalog.unnest(%(bookings)s::bigint[]) b
                 union
                 select 0, r::integer from pg_catalog.unnest(%(bookings)s::bigint[] || %(rid)s::bigint) r) keys""",
            {"rid": rid, "bookings": bookings},
        ).fetchone()  # type: ignore[misc]
        (singles,) = hostile.execute(
            "select count(pg_catalog.pg_advisory_lock(k)) from (select distinct pg_catalog.unnest(%s::bigint[]) k) keys",
            ([*bookings, rid],),
        ).fetchone()  # type: ignore[misc]
        assert pairs >= 64 + 2 * len(bookings) and singles >= len(bookings)
        # Row locks: the login with no grants cannot even name the schema's tables; the reader
        # may read every table and view but lock no row of any.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            hostile.execute("select * from allocator.permits for update")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            hostile.execute("select * from allocator.bookings for key share")
        relations = [
            name
            for (name,) in reader.execute(
                """select c.relname from pg_class c
                    where c.relnamespace = 'allocator'::regnamespace and c.relkind in ('r', 'v')
                      and has_table_privilege(c.oid, 'select') order by 1"""
            ).fetchall()
        ]
        assert {"bookings", "assignment_queue", "circuit_breakers"} <= set(relations)
        locked = []
        for relation in relations:
            for mode in ("update", "no key update", "share", "key share"):
                try:
                    reader.execute(f"select 1 from allocator.{relation} for {mode} limit 1")
                    locked.append(f"{relation} for {mode}")
                except (psycopg.errors.InsufficientPrivilege, psycopg.errors.FeatureNotSupported):
                    pass

        outcomes = [process(engine, booking) for booking in bookings]
        assert [(o["outcome"], o["reason"]) for o in outcomes] == [("confirmed", None)] * len(
            bookings
        ), outcomes
        assert locked == [], "the reader locked rows"
        assert "permits" in relations, "the reader sees the permits, and cannot lock them"
        still_held = engine.execute(
            "select count(*) from pg_locks where locktype = 'advisory' and pid = %s and granted",
            (hostile.info.backend_pid,),
        ).fetchone()
        assert still_held == (pairs + singles,), "the hostile locks were held throughout"
        hostile.execute("select pg_catalog.pg_advisory_unlock_all()")


def test_permits_held_by_long_transactions_defer_then_send_to_review(
    db_url: str, engine: psycopg.Connection[Any]
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        rid = restaurant(
            conn, "Permits held", {"flags": {"max_parallel": 2}, "retry": {"max_deferrals": 4}}
        )
        first, second, victim = book(conn, rid, [2, 3, 4])
    with psycopg.connect(db_url) as holder1, psycopg.connect(db_url) as holder2:
        # Two sessions process a booking each and stay in their transactions: both permits held.
        for holder, booking in ((holder1, first), (holder2, second)):
            row = holder.execute(
                "select allocator.process_booking(%s, 'slow') ->> 'outcome'", (booking,)
            ).fetchone()
            assert row == ("confirmed",)
        for n in (1, 2, 3):
            outcome = process(engine, victim, at_seconds=n)
            assert (outcome["outcome"], outcome["reason"], outcome["delay_ms"]) == (
                "retry",
                "rate_limited",
                200,
            )
            assert queue_row(engine, victim) == ("rate_limited", n), "each deferral is counted"
            assert booking_row(engine, victim) == ("created", 0, None, 0), "and nothing else"
        outcome = process(engine, victim, at_seconds=4)
        assert (outcome["outcome"], outcome["reason"]) == ("manual_review", "rate_limited")
        assert booking_row(engine, victim) == (
            "manual_review",
            0,
            "rate_limited after 4 deferrals",
            0,
        )
        assert queue_row(engine, victim) is None
        holder1.commit()
        holder2.commit()
    # The permits are free again: the next booking is assigned at once.
    (later,) = book(engine, rid, [6])
    assert process(engine, later)["outcome"] == "confirmed"


def test_a_held_booking_row_is_counted_and_bounded(
    db_url: str, engine: psycopg.Connection[Any]
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        rid = restaurant(conn, "Row held", {"retry": {"max_deferrals": 3}})
        (booking,) = book(conn, rid, [2])
    with psycopg.connect(db_url) as blocker:
        # Another session (another process_booking, a hold, a DBA) keeps the row locked.
        blocker.execute("select id from allocator.bookings where id = %s for update", (booking,))
        for n in (1, 2, 3):
            outcome = process(engine, booking, at_seconds=2 * n)
            assert (outcome["outcome"], outcome["reason"], outcome["delay_ms"]) == (
                "retry",
                "row_locked",
                1000,
            )
            assert queue_row(engine, booking) == ("row_locked", n)
        blocker.rollback()
    # The row is free: the first call that locks it finds retry.max_deferrals reached.
    outcome = process(engine, booking, at_seconds=8)
    assert (outcome["outcome"], outcome["reason"]) == ("manual_review", "row_locked")
    assert booking_row(engine, booking) == ("manual_review", 0, "row_locked after 3 deferrals", 0)


def test_a_raised_max_parallel_takes_effect(db_url: str, engine: psycopg.Connection[Any]) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        rid = restaurant(conn, "Raised max_parallel", {"flags": {"max_parallel": 1}})
        first, second = book(conn, rid, [2, 3])
    with psycopg.connect(db_url) as holder:
        row = holder.execute(
            "select allocator.process_booking(%s, 'slow') ->> 'outcome'", (first,)
        ).fetchone()
        assert row == ("confirmed",)
        assert process(engine, second)["reason"] == "rate_limited"
        engine.execute(
            'select allocator.update_settings(%s, \'{"flags": {"max_parallel": 2}}\')', (rid,)
        )
        assert process(engine, second, at_seconds=1)["outcome"] == "confirmed", (
            "the second slot is created and taken while the first is still held"
        )
        holder.commit()
    with psycopg.connect(db_url) as conn:
        slots = conn.execute(
            "select array_agg(slot order by slot) from allocator.permits where restaurant_id = %s",
            (rid,),
        ).fetchone()
    assert slots == ([1, 2],)
