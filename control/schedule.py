"""pg_cron schedules: the jobs allocator.cron_plan() asks for, installed idempotently."""

from __future__ import annotations

from typing import Any

import psycopg

from control.queries import query


def install(conn: psycopg.Connection[Any]) -> tuple[list[str], list[str]]:
    """Create or update every planned job and drop allocator jobs no longer planned.

    Returns (installed job names, removed job names). pg_cron's named schedule replaces a
    job of the same name, so running this twice leaves one set of jobs.
    """
    with conn.transaction():
        plan = conn.execute(query("cron_plan")).fetchall()
        wanted = {name for name, _, _ in plan}
        for name, schedule, command in plan:
            conn.execute(query("cron_schedule"), (name, schedule, command))
        removed = [
            name
            for _, name, *_ in conn.execute(query("cron_jobs")).fetchall()
            if name not in wanted
        ]
        for name in removed:
            conn.execute(query("cron_unschedule"), (name,))
    return sorted(wanted), removed


def remove(conn: psycopg.Connection[Any]) -> list[str]:
    """Drop every allocator job."""
    with conn.transaction():
        names = [name for _, name, *_ in conn.execute(query("cron_jobs")).fetchall()]
        for name in names:
            conn.execute(query("cron_unschedule"), (name,))
    return names


def jobs(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """The allocator jobs pg_cron has: id, name, schedule, command, active."""
    return conn.execute(query("cron_jobs")).fetchall()
