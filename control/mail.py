"""Customer notifications by mail: the guest's wording from templates per locale, and a sender
that hands each notification to an SMTP server once (docs/operations.md, "Notifications by
mail").

A message is handed over in two steps. Everything but the final line (``.``) goes to the
server first; then the database records that the message is committing; then the final line
goes, and the server's answer is recorded. A sender killed before the record leaves a message
the server drops (it never ended), so it is sent again; one killed after it leaves the
notification ``in_doubt``, which is never sent again without a person. The one message that
can be lost is one whose sender died between the record and the final line, and it is
flagged; none is ever sent twice."""

from __future__ import annotations

import email.policy
import functools
import logging
import re
import smtplib
import socket
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from control.queries import query

TEMPLATES = Path(__file__).with_name("templates") / "mail"
DEFAULT_LOCALE = "en"

log = logging.getLogger("allocator.mail")


@functools.cache
def templates(locale: str) -> dict[str, Any] | None:
    """The wording of one locale (``templates/mail/<locale>.toml``), or None."""
    if not re.fullmatch(r"[a-z]{2,3}(-[A-Z]{2})?", locale):
        return None
    path = TEMPLATES / f"{locale}.toml"
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def locales() -> list[str]:
    """The locales that have templates."""
    return sorted(p.stem for p in TEMPLATES.glob("*.toml"))


def resolve_locale(locale: str | None) -> str:
    """The first of the locale, its language, and English that has templates (pt-BR, pt, en)."""
    for candidate in (locale, (locale or "").split("-")[0], DEFAULT_LOCALE):
        if candidate and templates(candidate) is not None:
            return candidate
    return DEFAULT_LOCALE


def render(kind: str, payload: dict[str, Any], locale: str | None) -> tuple[str, str, str]:
    """(locale used, subject, body) of a notification for the guest. Only the booking's facts
    are used: never the reason a booking went to manual review, which is for staff."""
    used = resolve_locale(locale)
    words = templates(used)
    assert words is not None
    start = datetime.fromisoformat(str(payload["start"])).astimezone(ZoneInfo(payload["timezone"]))
    party = int(payload["party_size"])
    fields = {
        "restaurant": str(payload["restaurant"]),
        "guests": words["guests_one"] if party == 1 else words["guests_other"].format(n=party),
        "date": words["date"].format(
            weekday=words["weekdays"][start.weekday()],
            day=start.day,
            month=words["months"][start.month - 1],
            year=start.year,
        ),
        "time": words["time"].format(hour=start.hour, minute=start.minute),
    }
    text = words[kind]
    return used, text["subject"].format(**fields), text["body"].strip().format(**fields) + "\n"


def message_id(domain: str, restaurant_id: int, booking_id: int, event_id: int) -> str:
    """The Message-ID of the notification of one event of one booking: the same every time it
    is built, so a receiver can tell a message it already has."""
    return f"<booking-{booking_id}.event-{event_id}.restaurant-{restaurant_id}@{domain}>"


def build_message(
    sender: str, recipient: str, msgid: str, locale: str, subject: str, body: str
) -> bytes:
    """The message as the bytes SMTP carries (CRLF line ends)."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Message-ID"] = msgid
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message.set_content(body, charset="utf-8")
    # After set_content, which replaces every Content-* header.
    message["Content-Language"] = locale
    return message.as_bytes()


class HandOverRefused(Exception):
    """The database did not let the message be finished (its claim ran out)."""


class NoAnswer(Exception):
    """The final line went out and no answer came back: the server may have the message."""


def send_two_phase(
    smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes, hand_over: Callable[[], bool]
) -> None:
    """MAIL, RCPT and DATA with every line but the final ``.``; then ``hand_over()`` (which
    records the message as committing) and the final line. Raises SMTPResponseException when
    the server refuses, HandOverRefused when hand_over() says no (the connection is dropped,
    so the server discards the unfinished message), NoAnswer when the final line went out and
    nothing came back."""
    smtp.ehlo_or_helo_if_needed()
    code, response = smtp.mail(sender)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, response, sender)
    code, response = smtp.rcpt(recipient)
    if code not in (250, 251):
        raise smtplib.SMTPResponseException(code, response)
    smtp.putcmd("data")
    code, response = smtp.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, response)
    lines = re.sub(rb"\r\n|\n|\r", b"\r\n", data)
    lines = re.sub(rb"(?m)^\.", b"..", lines)
    if not lines.endswith(b"\r\n"):
        lines += b"\r\n"
    smtp.send(lines)
    if not hand_over():
        smtp.close()
        raise HandOverRefused()
    try:
        smtp.send(b".\r\n")
        code, response = smtp.getreply()
    except (OSError, smtplib.SMTPServerDisconnected) as exc:
        raise NoAnswer(str(exc)) from exc
    if code != 250:
        raise smtplib.SMTPDataError(code, response)


@dataclass
class MailConfig:
    """Where and how notifications are mailed."""

    host: str
    port: int
    sender: str = "bookings@localhost"
    lease_seconds: int = 60
    batch: int = 20
    timeout: float = 15.0

    @property
    def domain(self) -> str:
        return self.sender.rpartition("@")[2] or socket.getfqdn()


class Mailer:
    """Claims pending mail notifications and hands them to the SMTP server, recording each
    step. One instance per worker; ``name`` identifies its claims."""

    def __init__(self, config: MailConfig, name: str) -> None:
        self.config = config
        self.name = name
        self.sent = 0

    def run_once(self, conn: psycopg.Connection[Any]) -> int:
        """Claim a batch and send it; how many notifications were claimed."""
        cfg = self.config
        rows = conn.execute(
            query("claim_mail"), (self.name, cfg.batch, cfg.lease_seconds)
        ).fetchall()
        if not rows:
            return 0
        smtp: smtplib.SMTP | None = None
        try:
            for row in rows:
                if smtp is None:
                    try:
                        smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
                    except OSError as exc:
                        self._outcome(conn, row, "retry", None, f"connect: {exc}")
                        continue
                if not self._send(conn, smtp, row):
                    smtp.close()
                    smtp = None
        finally:
            if smtp is not None:
                try:
                    smtp.quit()
                except (OSError, smtplib.SMTPException):
                    smtp.close()
        return len(rows)

    def _send(
        self, conn: psycopg.Connection[Any], smtp: smtplib.SMTP, row: tuple[Any, ...]
    ) -> bool:
        """Send one claimed notification; whether the connection can be used again."""
        restaurant_id, notification_id, booking_id, event_id, kind, payload, address, locale, _ = (
            row
        )
        msgid = message_id(self.config.domain, restaurant_id, booking_id, event_id)
        used, subject, body = render(kind, payload, locale)
        data = build_message(self.config.sender, address, msgid, used, subject, body)

        def hand_over() -> bool:
            return self._outcome(conn, row, "committing", msgid, None)

        try:
            send_two_phase(smtp, self.config.sender, address, data, hand_over)
        except HandOverRefused:
            log.warning("claim of notification %s ran out; left to its new sender", notification_id)
            return False
        except NoAnswer as exc:
            self._outcome(conn, row, "in_doubt", msgid, f"no answer to the end of data: {exc}")
            return False
        except smtplib.SMTPResponseException as exc:
            outcome = "failed" if exc.smtp_code >= 500 else "retry"
            error = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            self._outcome(conn, row, outcome, msgid, f"{exc.smtp_code} {error}")
            try:
                smtp.rset()
            except (OSError, smtplib.SMTPException):
                return False
            return True
        except (OSError, smtplib.SMTPException) as exc:
            # Before the hand-over the server never had the whole message: send it again.
            self._outcome(conn, row, "retry", msgid, f"{type(exc).__name__}: {exc}")
            return False
        self._outcome(conn, row, "sent", msgid, None)
        self.sent += 1
        return True

    def _outcome(
        self,
        conn: psycopg.Connection[Any],
        row: tuple[Any, ...],
        outcome: str,
        msgid: str | None,
        error: str | None,
    ) -> bool:
        result = conn.execute(
            query("mail_outcome"), (row[0], row[1], self.name, outcome, msgid, error)
        ).fetchone()
        return bool(result and result[0])
