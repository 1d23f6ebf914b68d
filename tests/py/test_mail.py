"""Customer notifications by mail: the guest's wording per locale, and delivery to a real
SMTP server (aiosmtpd) by worker processes that are killed with SIGKILL at the two moments
that matter: while a message is being sent, and after the server has it but before the
worker has recorded the answer. Every guest gets exactly one message per event."""

from __future__ import annotations

import asyncio
import email
import email.policy
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller

from control.mail import locales, message_id, render, resolve_locale, templates
from tests.py.test_worker import WorkerProcess, wait_for

PAYLOAD = {
    "booking_id": 7,
    "restaurant": "Trattoria Demo",
    "party_size": 4,
    "start": "2026-12-02T18:30:00+00:00",
    "timezone": "Europe/Rome",
    "reason": "all_plans_conflicted after 5 attempts",
}


def test_wording_per_locale_and_never_the_internal_reason() -> None:
    assert {"en", "it"} <= set(locales())
    keys = {k: set(templates(k) or {}) for k in locales()}
    assert all(v == keys["en"] for v in keys.values()), "every locale has every text"
    used, subject, body = render("confirmed", PAYLOAD, "en")
    assert used == "en"
    assert subject == "Your table at Trattoria Demo is confirmed: Wednesday 2 December 2026, 19:30"
    assert "Party: 4 guests" in body
    used, subject, body = render("confirmed", PAYLOAD, "it")
    assert used == "it"
    assert (
        subject
        == "Il tuo tavolo da Trattoria Demo è confermato: mercoledì 2 dicembre 2026, ore 19:30"
    )
    assert "Persone: 4 persone" in body
    assert render("confirmed", {**PAYLOAD, "party_size": 1}, "it")[2].count("1 persona") == 1
    for locale in locales():
        _, subject, body = render("manual_review", PAYLOAD, locale)
        assert "conflicted" not in subject + body and "attempts" not in body
    assert render("table_offered", PAYLOAD, "en")[1] == "Your table at Trattoria Demo is ready"
    assert render("table_offered", PAYLOAD, "it")[1] == "Il tuo tavolo da Trattoria Demo è pronto"
    assert resolve_locale("it-IT") == "it", "a regional locale falls back to its language"
    assert resolve_locale("pt-BR") == "en", "a locale without texts falls back to English"
    assert resolve_locale("../../etc") == "en"
    assert (
        message_id("x.org", 1, 2, 3) == message_id("x.org", 1, 2, 3) != message_id("x.org", 1, 2, 4)
    )


class Sink:
    """An SMTP server that keeps every message it accepts. It can stop once at RCPT (the
    message is not yet sent) or after it has taken a whole message (before it answers), until
    released, so that the test can kill the sender at that moment."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.pause_at: str | None = None
        self.paused = threading.Event()
        self.release = threading.Event()

    async def _pause(self, where: str) -> None:
        if self.pause_at == where:
            self.pause_at = None
            self.paused.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        await self._pause("rcpt")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.SMTP)
        assert isinstance(message, email.message.EmailMessage)
        self.messages.append(message)
        await self._pause("data")
        return "250 Message accepted for delivery"


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        handler.release.set()
        controller.stop()


def mail_states(conn: psycopg.Connection[Any], rid: int) -> dict[str, int]:
    rows = conn.execute(
        "select status, count(*) from allocator.notifications where restaurant_id = %s group by status",
        (rid,),
    ).fetchall()
    return {status: int(n) for status, n in rows}


def test_each_guest_gets_one_message_per_event_when_workers_are_killed(
    db_url: str, tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    server, port = sink
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            """select allocator.import_layout('{"name": "Mailing", "timezone": "Europe/Rome", "settings": {"locale": "it"},
                 "tables": [{"label": "A1", "max_capacity": 4}, {"label": "A2", "max_capacity": 4},
                            {"label": "A3", "max_capacity": 4}, {"label": "A4", "max_capacity": 4}]}') ->> 'restaurant_id'"""
        ).fetchone()
        assert row is not None
        rid = int(row[0])
        guests = 6
        for i in range(guests):
            conn.execute(
                """select allocator.create_booking(%s, 2, date_trunc('hour', now()) + interval '2 days' + %s * interval '3 hours',
                          p_guest_email => %s, p_locale => %s)""",
                (rid, i, f"guest{i}@example.org", "en" if i % 2 else None),
            )

    def start(name: str) -> WorkerProcess:
        return WorkerProcess(
            db_url,
            name,
            tmp_path / f"{name}.log",
            "--smtp",
            f"127.0.0.1:{port}",
            "--mail-from",
            "bookings@trattoria.example",
            "--mail-lease-seconds",
            "2",
        )

    # Killed while sending: the server never got the end of the message.
    server.pause_at = "rcpt"
    first = start("mail-1")
    assert server.paused.wait(60), "the worker sends a message"
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(30)
    server.release.set()
    # Killed after the server took a whole message, before the worker heard its answer.
    server.paused.clear()
    server.release.clear()
    server.pause_at = "data"
    second = start("mail-2")
    assert server.paused.wait(60), "the restarted worker sends again"
    second.proc.send_signal(signal.SIGKILL)
    second.proc.wait(30)
    server.release.set()
    third = start("mail-3")
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert wait_for(
            lambda: (
                sum(v for k, v in mail_states(conn, rid).items() if k in ("sent", "in_doubt"))
                == guests
            ),
            timeout=60,
        ), (mail_states(conn, rid), third.log.read_text()[-3000:])
        states = mail_states(conn, rid)
        rows = conn.execute(
            """select n.email, n.message_id, n.locale, n.status from allocator.notifications n
                where n.restaurant_id = %s order by n.id""",
            (rid,),
        ).fetchall()
    third.stop()
    assert states == {"sent": guests - 1, "in_doubt": 1}, states
    ids = [str(m["Message-ID"]) for m in server.messages]
    assert len(ids) == len(set(ids)) == guests, f"duplicates: {len(ids) - len(set(ids))}; {ids}"
    by_id = {str(m["Message-ID"]): m for m in server.messages}
    for address, msgid, locale, _status in rows:
        message = by_id[msgid]
        assert str(message["To"]) == address
        assert str(message["Content-Language"]) == locale
        subject = str(message["Subject"])
        assert subject.startswith("Your table" if locale == "en" else "Il tuo tavolo"), subject
    assert {locale for _, _, locale, _ in rows} == {"en", "it"}
