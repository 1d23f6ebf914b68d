"""Anyone who can connect may NOTIFY allocator_events: a flood of junk notifications, sent
by a login with no privilege on the schema while a real worker runs, changes nothing. The
worker confirms the bookings made meanwhile, logs no error, exits cleanly, ignores every
payload that cannot be an event id, and runs its notification handler at most once a second,
not once per notification. bench/notify_flood.py runs the same flood and prints its figures."""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from bench.notify_flood import run_flood
from control.worker import WorkerConfig

POLL_INTERVAL = 0.2  # what run_flood starts the worker with


def test_a_flood_of_junk_notifications_is_harmless(db_url: str, tmp_path: Path) -> None:
    role, password = f"allocator_test_{os.getpid()}_nobody", secrets.token_hex(16)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("create role {} login password {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
    try:
        result = run_flood(
            db_url,
            junk=10_000,
            bookings=20,
            sender_url=make_conninfo(db_url, user=role, password=password),
            workdir=tmp_path,
        )
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))
    print("\nnotify flood:", dataclasses.asdict(result))
    assert result.worker_exit == 0
    assert result.errors == []
    assert result.confirmed == result.bookings
    assert result.notifications is not None and result.notifications >= result.junk
    assert result.notifications_ignored == result.junk_not_event_ids
    # Wake-ups are at least min_wakeup_interval apart, however many notifications came.
    interval = WorkerConfig().min_wakeup_interval
    assert result.wakeups is not None
    assert result.wakeups <= result.worker_s / interval + 1
    assert result.handler_runs is not None
    # The notification handler runs at most once per fan_out_interval, wake-ups or not; a run
    # that delivers something calls deliver_notifications once more, to drain a backlog.
    fan_out = WorkerConfig().fan_out_interval
    assert result.handler_runs <= 2 * (result.worker_s / fan_out + 2)
