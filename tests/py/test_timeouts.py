"""Nobody waits forever: the application and operator roles carry timeouts, and the sweep,
run_due and the workers skip a booking whose row another session holds, process every other
restaurant's bookings, and take the skipped one again once it is free.

Each test holds the row from a real second connection in an open transaction. The only time
bound asserted is a generous one (30 s) that proves the call did not wait for the blocker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from control import migrate
from tests.conftest import create_database, database_name_for, drop_database
from tests.py.test_worker import WorkerProcess, book, restaurant, states, wait_for

# What revision 0004 gives each role in the database it migrates (docs/operations.md).
TIMEOUTS = {
    "allocator_app": {
        "lock_timeout": "5s",
        "statement_timeout": "30s",
        "idle_in_transaction_session_timeout": "60s",
    },
    "allocator_ops": {
        "lock_timeout": "5s",
        "statement_timeout": "15min",
        "idle_in_transaction_session_timeout": "10min",
    },
}
OPS_LOGIN = "allocator_test_timeouts_ops"
NOT_FOREVER = 30.0


@pytest.fixture(scope="module")
def db(pytestconfig: pytest.Config) -> Iterator[str]:
    """A migrated database of this module's own: the sweep takes every due booking of its
    database, and here only this module's bookings are due."""
    worker = str(getattr(pytestconfig, "workerinput", {}).get("workerid", "main"))
    name = database_name_for(worker, "timeouts")
    url = create_database(name)
    migrate.upgrade("head", url=url)
    yield url
    drop_database(name)


def role_settings(conn: psycopg.Connection[Any]) -> dict[str, dict[str, str]]:
    """The settings each role has in the current database (pg_db_role_setting)."""
    rows = conn.execute(
        """select r.rolname, s.setconfig
             from pg_db_role_setting s
             join pg_roles r on r.oid = s.setrole
             join pg_database d on d.oid = s.setdatabase
            where d.datname = current_database()"""
    ).fetchall()
    return {name: dict(item.split("=", 1) for item in config) for name, config in rows if config}


@pytest.fixture(scope="module")
def ops_url(db: str) -> str:
    """A login role that is a member of allocator_ops, with the ops role's timeouts given to
    it as docs/operations.md says (PostgreSQL does not pass a role's settings to members)."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            f"""do $$ begin
                  create role {OPS_LOGIN} login in role allocator_ops;
                exception when duplicate_object then null;
                end $$"""
        )
        for name, value in TIMEOUTS["allocator_ops"].items():
            conn.execute(
                f"alter role {OPS_LOGIN} in database {conn.info.dbname} set {name} = '{value}'"
            )
    return make_conninfo(db, user=OPS_LOGIN)


def test_app_and_ops_roles_have_timeouts(db: str) -> None:
    with psycopg.connect(db) as conn:
        settings = role_settings(conn)
    for role, wanted in TIMEOUTS.items():
        assert settings.get(role) == wanted, f"{role}: {settings.get(role)}"


def test_timeouts_go_with_revision_0004(db: str) -> None:
    migrate.downgrade("0003", url=db)
    try:
        with psycopg.connect(db) as conn:
            left = role_settings(conn)
        assert "allocator_app" not in left and "allocator_ops" not in left
    finally:
        migrate.upgrade("head", url=db)
    with psycopg.connect(db) as conn:
        assert {role: role_settings(conn).get(role) for role in TIMEOUTS} == TIMEOUTS


def test_an_ops_login_with_the_timeouts_gets_them(ops_url: str) -> None:
    with psycopg.connect(ops_url) as conn:
        got = {
            name: conn.execute(f"show {name}").fetchone()[0]  # type: ignore[index]
            for name in TIMEOUTS["allocator_ops"]
        }
    assert got == TIMEOUTS["allocator_ops"]


def call_without_waiting_forever(url: str, sql: str, admin: str, setup: str | None = None) -> Any:
    """Run ``sql`` (after ``setup``) on a connection of its own. If it has not returned after
    NOT_FOREVER seconds it is waiting for the blocker: cancel it and fail."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                outcome["pid"] = conn.info.backend_pid
                if setup:
                    conn.execute(setup)
                cur = conn.execute(sql)
                outcome["rows"] = cur.fetchall() if cur.description else None
        except psycopg.Error as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(NOT_FOREVER)
    if thread.is_alive():
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("select pg_cancel_backend(%s)", (outcome.get("pid"),))
        thread.join(10)
        pytest.fail(f"{sql} was still waiting for the locked booking after {NOT_FOREVER} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("rows")


def two_restaurants(conn: psycopg.Connection[Any], tag: str) -> tuple[list[int], list[int]]:
    """Three due bookings in each of two restaurants. The first of the first restaurant is
    the oldest due row: the sweep takes it first."""
    first = book(conn, restaurant(conn, f"{tag} blocked"), 3)
    second = book(conn, restaurant(conn, f"{tag} other"), 3)
    return first, second


def queue_row(conn: psycopg.Connection[Any], booking: int) -> tuple[Any, ...] | None:
    return conn.execute(
        """select reason, run_at > allocator.now(), leased_by, lease_expires_at > allocator.now()
             from allocator.assignment_queue where booking_id = %s""",
        (booking,),
    ).fetchone()


@pytest.mark.parametrize("lock", ["for update", "for key share"])
@pytest.mark.parametrize(
    "call", ["call allocator.sweep(100, 'timeouts')", "select allocator.run_due(100, 'timeouts')"]
)
def test_sweep_skips_a_locked_booking(db: str, ops_url: str, lock: str, call: str) -> None:
    with psycopg.connect(db) as conn:
        tag = f"{'sweep' if call.startswith('call') else 'run_due'} {lock}"
        first, second = two_restaurants(conn, tag)
    locked = first[0]
    with psycopg.connect(db) as blocker:
        # A session (a tenant's modification, a hold in progress, a DBA's psql) keeps the
        # booking's row locked in an open transaction.
        blocker.execute(f"select id from allocator.bookings where id = %s {lock}", (locked,))
        # As pg_cron runs it: a login of allocator_ops, with that role's timeouts.
        call_without_waiting_forever(ops_url, call, db)
        with psycopg.connect(db) as conn:
            assert states(conn, first[1:] + second) == {"confirmed": 5}, (
                "the other bookings, of both restaurants, were processed"
            )
            assert states(conn, [locked]) == {"created": 1}
            _, later, leased_by, leased = queue_row(conn, locked)  # type: ignore[misc]
            assert (later, leased_by, leased) == (False, "timeouts", True), (
                "skipped: it keeps the lease of its claim, and is claimed again when that runs out"
            )
            attempts = conn.execute(
                "select count(*) from allocator.booking_assignment_attempts where booking_id = %s",
                (locked,),
            ).fetchone()
            assert attempts == (0,), "skipping is not an attempt"
        blocker.rollback()
    # The next sweep after the claim's 60-second lease has run out takes it.
    with psycopg.connect(db) as conn:
        row = conn.execute("select now() + interval '61 seconds'").fetchone()
        assert row is not None
    call_without_waiting_forever(
        db, call, db, setup=f"set allocator.clock = '{row[0].isoformat()}'"
    )
    with psycopg.connect(db) as conn:
        assert states(conn, first + second) == {"confirmed": 6}


def test_process_booking_returns_at_once_on_a_locked_row(db: str) -> None:
    with psycopg.connect(db) as conn:
        (booking,) = book(conn, restaurant(conn, "direct"), 1)
    with psycopg.connect(db) as blocker:
        blocker.execute("select id from allocator.bookings where id = %s for update", (booking,))
        rows = call_without_waiting_forever(
            db, f"select allocator.process_booking({booking}, 'direct')", db
        )
        assert rows is not None
        outcome = rows[0][0]
        assert (outcome["outcome"], outcome["reason"], outcome["delay_ms"]) == (
            "retry",
            "row_locked",
            1000,
        )
        with psycopg.connect(db) as conn:
            assert queue_row(conn, booking) == ("row_locked", True, None, None), (
                "due again a second later, not leased"
            )
        blocker.rollback()


def test_worker_skips_a_locked_booking(db: str, tmp_path: Path) -> None:
    with psycopg.connect(db) as conn:
        first, second = two_restaurants(conn, "worker")
    locked = first[0]
    with psycopg.connect(db) as blocker:
        blocker.execute("select id from allocator.bookings where id = %s for update", (locked,))
        # One processor: had it waited for the locked row, nothing else would move.
        worker = WorkerProcess(db, "timeouts", tmp_path / "worker.log", "--concurrency", "1")
        try:
            with psycopg.connect(db, autocommit=True) as conn:
                assert wait_for(
                    lambda: states(conn, first[1:] + second) == {"confirmed": 5}, NOT_FOREVER
                ), worker.log.read_text()
                assert states(conn, [locked]) == {"created": 1}
            skipped = [
                e
                for e in worker.events()
                if e["event"] == "processed" and e.get("booking_id") == locked
            ]
            assert skipped and {e["reason"] for e in skipped} == {"row_locked"}, skipped
            blocker.rollback()
            with psycopg.connect(db, autocommit=True) as conn:
                assert wait_for(lambda: states(conn, [locked]) == {"confirmed": 1}, NOT_FOREVER)
        finally:
            assert worker.stop() == 0
