"""What `allocator status` and `allocator inspect` print."""

from __future__ import annotations

from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

from control.display import cell, json_text
from control.queries import query


def _table(title: str, columns: list[str], rows: list[tuple[Any, ...]]) -> Table:
    grid = Table(title=title)
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*(cell(v) for v in row))
    return grid


def print_status(conn: psycopg.Connection[Any], console: Console) -> None:
    """Queue, deferrals, states, breakers, mail, workers and leases."""
    console.print(
        _table(
            "queue",
            [
                "restaurant",
                "queued",
                "due",
                "leased",
                "scheduled",
                "pooled",
                "oldest run_at",
                "due for (s)",
            ],
            conn.execute(query("status_queue")).fetchall(),
        )
    )
    console.print(
        _table(
            "put back without being worked on",
            ["restaurant", "reason", "bookings", "deferrals in a row"],
            conn.execute(query("status_deferrals")).fetchall(),
        )
    )
    console.print(
        _table(
            "bookings per state",
            ["restaurant", "state", "bookings"],
            conn.execute(query("status_states")).fetchall(),
        )
    )
    console.print(
        _table(
            "circuit breakers",
            ["restaurant", "state", "failures", "opened at"],
            conn.execute(query("status_breakers")).fetchall(),
        )
    )
    console.print(
        _table(
            "notifications by mail",
            ["restaurant", "status", "notifications", "oldest unsent since"],
            conn.execute(query("status_mail")).fetchall(),
        )
    )
    console.print(
        _table(
            "workers and leases",
            ["lease", "owner", "expires", "live"],
            conn.execute(query("status_leases")).fetchall(),
        )
    )


def print_booking(conn: psycopg.Connection[Any], booking_id: int, console: Console) -> bool:
    """The booking and its timeline; False if there is no such booking."""
    row = conn.execute(query("booking"), (booking_id,)).fetchone()
    if row is None:
        console.print(f"[red]no booking {booking_id}[/red]")
        return False
    console.print(json_text(row[0]), soft_wrap=True)
    console.print(
        _table(
            f"booking {booking_id}: timeline",
            ["at", "kind", "what", "actor", "reason", "details"],
            conn.execute(query("booking_timeline"), (booking_id,)).fetchall(),
        )
    )
    return True
