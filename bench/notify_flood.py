"""A worker under a flood of junk notifications on allocator_events.

Channels have no privileges: any role that can connect may LISTEN to allocator_events and
NOTIFY it. This starts a real worker (``allocator worker``, with a notification sink) on a
restaurant of its own, sends junk notifications (words, empty and oversized payloads, ids
too large for an event, negative numbers, and numbers that look like event ids, such as
other restaurants' booking ids), each in a transaction of its own, from several connections,
and creates real bookings meanwhile. It prints how long the flood took, the worker's CPU time
during the flood against the same time at rest, the wake-ups and notification handler runs
the flood caused, and whether every booking was confirmed.

    .venv/bin/python bench/notify_flood.py [--junk 10000] [--bookings 20] [--senders 4]

It uses ``DATABASE_URL`` or the embedded cluster, and deletes its restaurant afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from control.worker import EVENT_ID

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class FloodResult:
    junk: int  # notifications sent
    junk_not_event_ids: int  # of which payloads that cannot be an event id
    flood_s: float  # how long sending them took
    bookings: int
    confirmed: int  # of the bookings created during the flood
    settle_s: float  # from the end of the flood until every booking was confirmed
    worker_cpu_flood_s: float  # the worker's CPU time during the flood
    worker_cpu_idle_s: float  # its CPU time at rest for as long as the flood took
    worker_s: float  # how long the worker ran
    wakeups: int | None  # the worker's wake-ups by notifications (from its log)
    notifications: int | None  # notifications it received
    notifications_ignored: int | None  # of which it ignored (not an event id)
    handler_runs: int | None  # its deliver_notifications calls (superuser only: track_functions)
    claims: int | None  # its claim_due calls (idem)
    worker_exit: int | None
    errors: list[str]  # log lines of level error


def junk_payloads(count: int, ids: list[int]) -> list[str]:
    """``count`` payloads, every kind in turn; ``ids`` are numbers of other rows."""
    kinds: list[Callable[[int], str]] = [
        lambda i: f"junk {i}",
        lambda i: "",
        lambda i: "x" * 7000,
        lambda i: "9" * 40,
        lambda i: str(2**63 + i),
        lambda i: f"-{i}",
        lambda i: '{"booking_id": 1}',
        lambda i: f"1; select pg_sleep({i})",
        lambda i: str(ids[i % len(ids)] if ids else 1_000_000_000 + i),
        lambda i: str(10**17 + i),
    ]
    return [kinds[i % len(kinds)](i) for i in range(count)]


def is_event_id(payload: str) -> bool:
    """Whether a payload could be an event id (what the worker does not ignore)."""
    return bool(EVENT_ID.fullmatch(payload))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def send(url: str, payloads: list[str], senders: int) -> float:
    """Send every payload as a NOTIFY of its own, from ``senders`` connections; seconds taken."""
    chunks = [payloads[i::senders] for i in range(senders)]

    def run(chunk: list[str]) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            for payload in chunk:
                conn.execute("select pg_notify('allocator_events', %s)", (payload,))

    threads = [threading.Thread(target=run, args=(c,)) for c in chunks]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def _log_events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def _calls(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Calls of the functions a worker runs on a wake-up, from the statistics."""
    conn.execute("select pg_stat_clear_snapshot()")
    rows = conn.execute(
        "select funcname, sum(calls) from pg_stat_user_functions where schemaname = 'allocator'"
        " and funcname in ('deliver_notifications', 'claim_due') group by funcname"
    ).fetchall()
    return {"deliver_notifications": 0, "claim_due": 0} | {name: int(n) for name, n in rows}


def run_flood(
    url: str,
    *,
    junk: int = 10_000,
    bookings: int = 20,
    senders: int = 4,
    sender_url: str | None = None,
    workdir: Path | None = None,
) -> FloodResult:
    """Flood a running worker with junk notifications (sent from ``sender_url``, by default
    ``url``) while ``bookings`` real bookings are created; the worker is stopped after."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="allocator-flood-"))
    log, sink = workdir / "worker.log", workdir / "notifications.jsonl"
    name = f"flood-{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        layout = {
            "name": f"Notify flood {os.getpid()}",
            "tables": [{"label": f"F{i}", "max_capacity": 4} for i in range(bookings)],
        }
        row = conn.execute(
            "select (allocator.import_layout(%s::jsonb) ->> 'restaurant_id')::bigint",
            (json.dumps(layout),),
        ).fetchone()
        assert row is not None
        restaurant_id = int(row[0])
        other_ids = [r[0] for r in conn.execute("select id from allocator.bookings limit 100")]
        payloads = junk_payloads(junk, other_ids)
        superuser = conn.execute("select current_setting('is_superuser') = 'on'").fetchone()
        env = {**os.environ, "DATABASE_URL": url}
        if superuser and superuser[0]:
            # The worker's sessions count their function calls (a superuser setting).
            env["PGOPTIONS"] = "-c track_functions=all"
        calls_before = _calls(conn)
        started = time.monotonic()
        worker = subprocess.Popen(
            [
                *(sys.executable, "-m", "control.cli", "worker", "--name", name),
                *("--poll-interval", "0.2", "--notifications", str(sink), "--log-level", "INFO"),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )
        try:
            deadline = time.monotonic() + 30
            while not any(e["event"] == "listening" for e in _log_events(log)):
                assert worker.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            time.sleep(0.5)
            created: list[int] = []

            def book() -> None:
                with psycopg.connect(url, autocommit=True) as c:
                    for _ in range(bookings):
                        r = c.execute(
                            "select (allocator.create_booking(%s, 2, date_trunc('hour', now())"
                            " + interval '1 day', 60) ->> 'booking_id')::bigint",
                            (restaurant_id,),
                        ).fetchone()
                        assert r is not None
                        created.append(int(r[0]))
                        time.sleep(0.05)

            booker = threading.Thread(target=book)
            cpu_start = cpu_seconds(worker.pid)
            booker.start()
            flood_s = send(sender_url or url, payloads, senders)
            cpu_flood = cpu_seconds(worker.pid) - cpu_start
            booker.join()
            flood_end = time.monotonic()
            confirmed = 0
            while time.monotonic() < flood_end + 60:
                c_row = conn.execute(
                    "select count(*) from allocator.bookings"
                    " where id = any(%s) and state = 'confirmed'",
                    (created,),
                ).fetchone()
                confirmed = int(c_row[0]) if c_row else 0
                if confirmed == len(created):
                    break
                time.sleep(0.05)
            settle_s = time.monotonic() - flood_end
            idle_start = cpu_seconds(worker.pid)
            time.sleep(flood_s)
            cpu_idle = cpu_seconds(worker.pid) - idle_start
        finally:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
            try:
                worker_exit: int | None = worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker_exit = None
            worker_s = time.monotonic() - started
            conn.execute("select allocator.delete_restaurant(%s)", (restaurant_id,))
        time.sleep(0.5)  # the worker's sessions report their statistics as they end
        calls = {k: v - calls_before[k] for k, v in _calls(conn).items()}
        counted = "PGOPTIONS" in env
    events = _log_events(log)
    stopped = next((e for e in events if e["event"] == "stopped"), {})
    return FloodResult(
        junk=junk,
        junk_not_event_ids=sum(not is_event_id(p) for p in payloads),
        flood_s=round(flood_s, 3),
        bookings=bookings,
        confirmed=confirmed,
        settle_s=round(settle_s, 3),
        worker_cpu_flood_s=round(cpu_flood, 3),
        worker_cpu_idle_s=round(cpu_idle, 3),
        worker_s=round(worker_s, 3),
        wakeups=stopped.get("wakeups"),
        notifications=stopped.get("notifications"),
        notifications_ignored=stopped.get("notifications_ignored"),
        handler_runs=calls["deliver_notifications"] if counted else None,
        claims=calls["claim_due"] if counted else None,
        worker_exit=worker_exit,
        errors=[json.dumps(e) for e in events if e.get("level") == "error"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--junk", type=int, default=10_000, help="junk notifications (10000)")
    parser.add_argument("--bookings", type=int, default=20, help="real bookings (20)")
    parser.add_argument("--senders", type=int, default=4, help="sending connections (4)")
    args = parser.parse_args()
    from control.db import database_url

    result = run_flood(database_url(), junk=args.junk, bookings=args.bookings, senders=args.senders)
    for key, value in asdict(result).items():
        print(f"{key:24} {value}")


if __name__ == "__main__":
    main()
