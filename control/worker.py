"""The worker: wakes on NOTIFY allocator_events (and polls), claims due bookings and lets
the database process them; fans events out to the notification handler.

NOTIFY is only a wake-up. The queue and the events outbox are the truth, so a missed
notification, a dropped connection or a restart loses nothing: after every (re)connect the
worker catches up from the database. Channels have no privileges: anyone who can connect may
NOTIFY allocator_events, so a payload is never trusted or used, and a flood of notifications
costs a bounded number of wake-ups per second, not one each.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from control.mail import MailConfig, Mailer, render
from control.queries import query

# Exit code of a worker whose --name another live worker holds.
NAME_IN_USE = 3

# What allocator.emit_event sends: an event id. Any other payload is not from the schema.
EVENT_ID = re.compile(r"[1-9][0-9]{0,18}")


def _when(lease: dict[str, Any]) -> datetime:
    """A lease's expiry, as lease_acquire reports it."""
    return datetime.fromisoformat(str(lease["expires_at"]))


log = logging.getLogger("allocator.worker")


class JsonFormatter(logging.Formatter):
    """One JSON object per log line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send structured JSON logs to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("allocator")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _log(level: int, event: str, **fields: Any) -> None:
    log.log(level, event, extra={"fields": fields})


@contextmanager
def deadline(conn: psycopg.Connection[Any], seconds: float) -> Iterator[None]:
    """Fail the statements inside if they take longer than ``seconds``.

    libpq has no read timeout: a connection whose network path died silently (no FIN, no
    RST, the peer still acknowledging) blocks forever. Past the deadline the socket is shut
    down, so the blocked call fails with OperationalError and the caller reconnects.
    """

    def cut() -> None:
        try:
            fd = os.dup(conn.pgconn.socket)
        except (OSError, psycopg.Error):
            return
        with socket.socket(fileno=fd) as sock, suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def with_message(payload: dict[str, Any]) -> dict[str, Any]:
    """A notification line of the JSON-lines sink: the payload, and the guest's message in
    the guest's locale (``message``: locale, subject, body). The payload's ``reason`` is for
    staff; the message never contains it."""
    locale, subject, body = render(payload["kind"], payload, payload.get("locale"))
    return {**payload, "message": {"locale": locale, "subject": subject, "body": body}}


@dataclass
class WorkerConfig:
    """How a worker runs."""

    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    concurrency: int = 2
    poll_interval: float = 1.0
    batch: int = 10
    claim_lease_seconds: int = 30
    worker_lease_seconds: int = 15
    notifications: Path | None = None
    # Customer notifications by mail, when set.
    mail: MailConfig | None = None
    max_backoff: float = 5.0
    # How long one database call may take before its connection is presumed dead.
    io_timeout: float = 15.0
    # Notifications arriving closer together than this wake the processors once.
    min_wakeup_interval: float = 0.005
    # The notification handler runs at most this often (and at every poll): a wake-up is
    # for new work, which has no guest notification yet, and each run is a transaction that
    # moves a cursor and flushes at commit.
    fan_out_interval: float = 1.0


class Worker:
    """One worker process: a listener, N processors and a heartbeat."""

    def __init__(self, url: str, config: WorkerConfig) -> None:
        self.url = url
        self.config = config
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.processed = 0
        self._count_lock = threading.Lock()
        # The listener's counts: notifications received, those ignored (not an event id),
        # and the wake-ups they caused.
        self.notifies = 0
        self.notifies_ignored = 0
        self.wakeups = 0
        self._last_wakeup = 0.0
        # The worker lease "worker:<name>" is held by this process alone: a second live
        # process with the same name must not share its claims.
        self.owner = f"{config.name}@{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.exit_code = 0

    # -- lifecycle -------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT ask for a clean stop."""

        def handler(signum: int, _frame: FrameType | None) -> None:
            _log(logging.INFO, "stopping", signal=signal.Signals(signum).name)
            self.stop.set()
            self.wake.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self) -> int:
        """Run until stopped; returns the process exit code."""
        cfg = self.config
        pool = ConnectionPool(
            self.url,
            min_size=1,
            max_size=cfg.concurrency + 1,
            kwargs={"autocommit": True},
            open=False,
            name=f"allocator-{cfg.name}",
        )
        pool.open(wait=False)
        if not self._take_name():
            pool.close()
            return self.exit_code
        _log(logging.INFO, "started", worker=cfg.name, concurrency=cfg.concurrency)
        threads = [
            threading.Thread(target=self._processor, args=(pool, i), name=f"processor-{i}")
            for i in range(cfg.concurrency)
        ]
        threads.append(threading.Thread(target=self._heartbeat, name="heartbeat"))
        if cfg.mail is not None:
            threads.append(threading.Thread(target=self._mailer, args=(cfg.mail,), name="mailer"))
        for thread in threads:
            thread.start()
        try:
            self._listen()
        finally:
            self.stop.set()
            self.wake.set()
            for thread in threads:
                thread.join()
            self._last_fan_out()
            released = self._release(pool)
            pool.close()
            _log(
                logging.INFO,
                "stopped",
                worker=cfg.name,
                processed=self.processed,
                released_claims=released,
                notifications=self.notifies,
                notifications_ignored=self.notifies_ignored,
                wakeups=self.wakeups,
            )
        return self.exit_code

    def _take_name(self) -> bool:
        """Take the worker lease. While the database is down, wait for it. While another
        process holds the name, wait: a process that died stops extending its lease, which
        then runs out and is taken; a live one extends it (its expiry moves on), and this
        process gives up with exit code NAME_IN_USE."""
        cfg = self.config
        backoff = 0.1
        seen: dict[str, Any] | None = None
        while not self.stop.is_set():
            try:
                holder = self._lease("lease_acquire")
            except psycopg.OperationalError as exc:
                _log(
                    logging.WARNING, "waiting for the database", error=str(exc), retry_in_s=backoff
                )
                self.stop.wait(backoff)
                backoff = min(backoff * 2, cfg.max_backoff)
                continue
            if holder is None:
                return True
            if seen is None or seen.get("owner") != holder.get("owner"):
                seen = holder
                _log(
                    logging.WARNING,
                    "worker name in use, waiting",
                    worker=cfg.name,
                    owner=holder.get("owner"),
                    expires_at=holder.get("expires_at"),
                )
            elif _when(holder) > _when(seen):
                _log(
                    logging.ERROR,
                    "worker name in use by a live worker; choose another --name",
                    worker=cfg.name,
                    owner=holder.get("owner"),
                )
                self.exit_code = NAME_IN_USE
                return False
            self.stop.wait(0.5)
        return False

    # -- listening and fan-out -----------------------------------------------------------
    def _listen(self) -> None:
        backoff = 0.1
        while not self.stop.is_set():
            try:
                with psycopg.connect(
                    self.url,
                    autocommit=True,
                    application_name=f"allocator-listener:{self.config.name}",
                ) as conn:
                    conn.execute("listen allocator_events")
                    _log(logging.INFO, "listening", worker=self.config.name)
                    backoff = 0.1
                    self.wake.set()  # catch up on whatever happened while not listening
                    self._fan_out(conn)
                    fanned_out = time.monotonic()
                    while not self.stop.is_set():
                        woke = self._wait_for_wakeup(conn)
                        self.wake.set()
                        with deadline(conn, self.config.io_timeout):
                            if time.monotonic() - fanned_out >= self.config.fan_out_interval:
                                self._fan_out(conn)
                                fanned_out = time.monotonic()
                            if not woke:
                                conn.execute("select 1")  # is the listening connection alive?
            except psycopg.OperationalError as exc:
                _log(
                    logging.WARNING,
                    "listener lost",
                    worker=self.config.name,
                    error=str(exc),
                    retry_in_s=backoff,
                )
                self.stop.wait(backoff)
                backoff = min(backoff * 2, self.config.max_backoff)

    def _last_fan_out(self) -> None:
        """On a clean stop, after the processors have finished: turn the events of their
        last bookings into notifications now, not at the next worker's start."""
        if self.config.notifications is None and self.config.mail is None:
            return
        try:
            with (
                psycopg.connect(self.url, autocommit=True) as conn,
                deadline(conn, self.config.io_timeout),
            ):
                self._fan_out(conn)
        except psycopg.Error as exc:
            _log(logging.WARNING, "last notifications not delivered", error=str(exc))

    def _wait_for_wakeup(self, conn: psycopg.Connection[Any]) -> bool:
        """Wait up to the poll interval for a notification; True if one came.

        A payload that is not an event id is counted and ignored. Once one has come, every
        notification arriving until ``min_wakeup_interval`` after the previous wake-up is
        taken with it, so however many arrive, the processors run at most once per interval
        (and the notification handler at most once per ``fan_out_interval``)."""
        cfg = self.config
        woke = False
        until = time.monotonic() + cfg.poll_interval
        while not woke and not self.stop.is_set():
            remaining = until - time.monotonic()
            if remaining <= 0:
                break
            for notify in conn.notifies(timeout=remaining, stop_after=1):
                woke = self._count(notify.payload) or woke
        if woke:
            hold = self._last_wakeup + cfg.min_wakeup_interval - time.monotonic()
            for notify in conn.notifies(timeout=max(0.0, hold)):
                self._count(notify.payload)
            self._last_wakeup = time.monotonic()
            self.wakeups += 1
        return woke

    def _count(self, payload: str) -> bool:
        """Count a notification; whether its payload is an event id."""
        self.notifies += 1
        if EVENT_ID.fullmatch(payload):
            return True
        self.notifies_ignored += 1
        return False

    def _fan_out(self, conn: psycopg.Connection[Any]) -> None:
        """Notification handler: turn new confirmed / manual_review events into notifications.

        Each call reads up to 5,000 events; while they give notifications it calls again at
        once (at most 20 times), so a backlog drains in one run instead of one batch a second."""
        for _ in range(20):
            if not self._fan_out_batch(conn):
                return

    def _fan_out_batch(self, conn: psycopg.Connection[Any]) -> int:
        """One batch of the notification handler; how many notifications it wrote."""
        if self.config.notifications is None and self.config.mail is None:
            return 0
        with conn.transaction():
            rows = conn.execute(query("deliver_notifications")).fetchall()
            if rows and self.config.notifications is not None:
                # Written before the cursor commits: a crash here redelivers, never loses.
                with self.config.notifications.open("a") as sink:
                    for (payload,) in rows:
                        sink.write(json.dumps(with_message(payload), default=str) + "\n")
        if rows:
            _log(logging.INFO, "notified", count=len(rows))
        return len(rows)

    # -- processing ------------------------------------------------------------------
    def _processor(self, pool: ConnectionPool, index: int) -> None:
        cfg = self.config
        backoff = 0.1
        wait = cfg.poll_interval
        while not self.stop.is_set():
            self.wake.wait(wait)
            wait = cfg.poll_interval
            if self.stop.is_set():
                return
            try:
                with pool.connection() as conn, deadline(conn, self.config.io_timeout):
                    claimed = conn.execute(
                        query("claim_due"), (cfg.name, cfg.batch, cfg.claim_lease_seconds)
                    ).fetchall()
                    if not claimed:
                        self.wake.clear()
                        # A retry scheduled sooner than the next poll wakes nobody: sleep
                        # until it is due.
                        row = conn.execute(query("next_due_in")).fetchone()
                        if row and row[0] is not None:
                            wait = min(cfg.poll_interval, max(0.005, float(row[0])))
                        continue
                    for (booking_id,) in claimed:
                        if self.stop.is_set():
                            break
                        row = conn.execute(
                            query("process_booking"), (booking_id, cfg.name)
                        ).fetchone()
                        outcome = row[0] if row else {}
                        with self._count_lock:
                            self.processed += 1
                        _log(logging.DEBUG, "processed", processor=index, **outcome)
                backoff = 0.1
            except psycopg.OperationalError as exc:
                _log(
                    logging.WARNING,
                    "processor lost its connection",
                    processor=index,
                    error=str(exc),
                )
                self.stop.wait(backoff)
                backoff = min(backoff * 2, cfg.max_backoff)
            except Exception as exc:  # a processor thread must outlive any one failure
                _log(
                    logging.ERROR,
                    "processing failed",
                    processor=index,
                    error=str(exc),
                    sqlstate=getattr(exc, "sqlstate", None),
                )
                self.stop.wait(backoff)

    def _mailer(self, config: MailConfig) -> None:
        """Mail the notifications that have an address, claiming them as this process (its
        owner string, unique to the process: a restarted worker does not inherit claims)."""
        mailer = Mailer(config, self.owner)
        backoff = 0.1
        while not self.stop.is_set():
            try:
                with psycopg.connect(
                    self.url,
                    autocommit=True,
                    application_name=f"allocator-mailer:{self.config.name}",
                ) as conn:
                    backoff = 0.1
                    while not self.stop.is_set():
                        if mailer.run_once(conn) == 0:
                            self.stop.wait(self.config.poll_interval)
            except psycopg.Error as exc:
                _log(logging.WARNING, "mailer failed", error=str(exc), retry_in_s=backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, self.config.max_backoff)
        _log(logging.INFO, "mailer stopped", sent=mailer.sent)

    def _heartbeat(self) -> None:
        interval = self.config.worker_lease_seconds / 3
        while not self.stop.wait(interval):
            try:
                holder = self._lease("lease_extend")
            except psycopg.Error as exc:
                _log(logging.WARNING, "heartbeat failed", error=str(exc))
                continue
            if holder is not None:
                # Another process took the name while this one could not heartbeat: its
                # claims are now that process's, so this one stops.
                _log(
                    logging.ERROR,
                    "worker name taken by another worker; stopping",
                    worker=self.config.name,
                    owner=holder.get("owner"),
                )
                self.exit_code = NAME_IN_USE
                self.stop.set()
                self.wake.set()

    def _lease(self, action: str) -> dict[str, Any] | None:
        """Extend (``lease_extend``, taking it again if it lapsed) or take the worker lease;
        None when this process holds it, else the lease as held (``owner``, ``expires_at``)."""
        cfg = self.config
        args = (f"worker:{cfg.name}", self.owner, cfg.worker_lease_seconds)
        with psycopg.connect(self.url, autocommit=True) as conn:
            if action == "lease_extend":
                row = conn.execute(query("lease_extend"), args).fetchone()
                if row and row[0]:
                    return None
                _log(logging.WARNING, "worker lease lost, taking it again", worker=cfg.name)
            taken = conn.execute(query("lease_acquire"), args).fetchone()
            result: dict[str, Any] = dict(taken[0]) if taken else {}
            return None if result.get("acquired") else result

    def _release(self, pool: ConnectionPool) -> int:
        """If this process still holds the worker lease: give up its claims, then the lease
        (in that order, so that no new holder of the name claims in between)."""
        cfg = self.config
        name = f"worker:{cfg.name}"
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                held = conn.execute(
                    query("lease_extend"), (name, self.owner, cfg.worker_lease_seconds)
                ).fetchone()
                if not (held and held[0]):
                    return 0
                row = conn.execute(query("release_claims"), (cfg.name,)).fetchone()
                conn.execute(query("lease_release"), (name, self.owner))
                return int(row[0]) if row else 0
        except psycopg.Error as exc:
            _log(logging.WARNING, "could not release leases", error=str(exc))
            return 0
