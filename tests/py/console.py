"""A running console over two restaurants with one staff member each, for the console's
API, browser and fuzz tests (a helper module, not a test file)."""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg

from control.web.auth import hash_password, new_token
from control.web.serve import running

ZONE = ZoneInfo("Europe/Rome")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Member:
    login: str
    password: str
    token: str
    restaurant_id: int
    name: str


@dataclass
class ConsoleWorld:
    db: str
    base: str
    secret: str
    a: Member
    b: Member

    def api(self, member: Member) -> httpx.Client:
        """An API client authenticated by the member's bearer token."""
        return httpx.Client(
            base_url=self.base, timeout=30, headers={"Authorization": f"Bearer {member.token}"}
        )


def layout(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "timezone": "Europe/Rome",
        "zones": [{"name": "Main"}, {"name": "Garden"}],
        "tables": [
            {"label": "T1", "zone": "Main", "max_capacity": 2},
            {"label": "T2", "zone": "Main", "max_capacity": 4},
            {"label": "T3", "zone": "Main", "max_capacity": 4},
            {"label": "G1", "zone": "Garden", "max_capacity": 6},
        ],
        "adjacency": [["T2", "T3"]],
    }


def tomorrow_at(hour: int, minute: int = 0, days: int = 1) -> datetime:
    """A local time on a day to come (the console and workers run on the real clock)."""
    day = datetime.now(ZONE).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE)


def add_member(conn: psycopg.Connection[Any], login: str, restaurant_id: int, name: str) -> Member:
    password = secrets.token_urlsafe(12)
    conn.execute(
        "select allocator.add_staff(%s, %s, %s, %s)",
        (login, name, hash_password(password), [restaurant_id]),
    )
    token, digest = new_token()
    conn.execute("select allocator.issue_staff_token(%s, %s, 'tests', 1)", (login, digest))
    return Member(login, password, token, restaurant_id, name)


@contextmanager
def console_world(db_url: str, home: Path) -> Iterator[ConsoleWorld]:
    """Restaurants A and B (dinner every day 17:00-22:30), ann for A and bob for B, and the
    console serving them on a free port."""
    tag = secrets.token_hex(3)
    with psycopg.connect(db_url, autocommit=True) as conn:
        ids = []
        for which in ("A", "B"):
            row = conn.execute(
                "select allocator.import_layout(%s::jsonb) ->> 'restaurant_id'",
                (json.dumps(layout(f"Console {which} {tag}")),),
            ).fetchone()
            assert row is not None
            restaurant_id = int(row[0])
            conn.execute(
                "select allocator.set_service(%s, 'dinner', array[1,2,3,4,5,6,7],"
                " '17:00', '22:30')",
                (restaurant_id,),
            )
            ids.append(restaurant_id)
        a = add_member(conn, f"ann-{tag}", ids[0], "Ann A")
        b = add_member(conn, f"bob-{tag}", ids[1], "Bob B")
    secret_file = home / "console-secret"
    secret = secrets.token_urlsafe(40)
    secret_file.write_text(secret)
    with running(db_url, "127.0.0.1", free_port(), secret_file) as base:
        yield ConsoleWorld(db_url, base, secret, a, b)


def sign_in(base: str, member: Member) -> httpx.Client:
    """A browser-like client signed in with the member's password; its CSRF token is in
    client.headers for the API and in client.csrf for forms."""
    client = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
    page = client.get("/login")
    csrf = csrf_in(page.text)
    answer = client.post(
        "/login",
        data={"login": member.login, "password": member.password, "csrf_token": csrf, "next": "/"},
    )
    assert answer.status_code == 303, answer.text
    board = client.get("/")
    assert board.status_code == 200
    client.csrf = csrf_in(board.text)  # type: ignore[attr-defined]
    return client


def csrf_in(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def to_manual_review(db_url: str, booking_id: int, reason: str = "no table fits") -> None:
    """Send a queued booking to manual review as a worker giving up would: through the state
    machine (history, events), off the queue."""
    with psycopg.connect(db_url, autocommit=True) as conn, conn.transaction():
        conn.execute(
            "select allocator.dequeue(b.restaurant_id, b.id),"
            " allocator.transition(b.id, b.version, 'manual_review', 'worker:console-tests', %s)"
            " from allocator.bookings b where b.id = %s",
            (reason, booking_id),
        )
