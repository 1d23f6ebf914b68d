"""Worker processes for real: confirmation, crashes, lost connections, shutdown, and the
in-database sweep that needs no worker."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class WorkerProcess:
    def __init__(self, url: str, name: str, log: Path, *extra: str) -> None:
        self.name = name
        self.log = log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "control.cli",
                "worker",
                "--name",
                name,
                "--poll-interval",
                "0.2",
                "--log-level",
                "DEBUG",
                *extra,
            ],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": url},
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )

    def events(self) -> list[dict[str, Any]]:
        return [
            json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")
        ]

    def logged(self, event: str) -> int:
        return sum(1 for e in self.events() if e["event"] == event)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def workers(db_url: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(name: str, *extra: str, listening: bool = True) -> WorkerProcess:
        worker = WorkerProcess(db_url, name, tmp_path / f"{name}.log", *extra)
        started.append(worker)
        if listening:
            assert wait_for(lambda: worker.logged("listening") >= 1, 60), worker.log.read_text()
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait()


def restaurant(conn: psycopg.Connection[Any], name: str, tables: int = 6) -> int:
    layout = {
        "name": name,
        "tables": [{"label": f"W{i}", "max_capacity": 4} for i in range(tables)],
    }
    row = conn.execute(
        "select allocator.import_layout(%s::jsonb)", (json.dumps(layout),)
    ).fetchone()
    conn.commit()
    assert row is not None
    return int(row[0]["restaurant_id"])


def book(conn: psycopg.Connection[Any], restaurant_id: int, count: int) -> list[int]:
    ids = []
    for i in range(count):
        row = conn.execute(
            "select (allocator.create_booking(%s, 2, date_trunc('hour', now()) + interval '1 day' + %s * interval '3 hours', 120)"
            " ->> 'booking_id')::bigint",
            (restaurant_id, i // 6),
        ).fetchone()
        assert row is not None
        ids.append(int(row[0]))
    conn.commit()
    return ids


def states(conn: psycopg.Connection[Any], ids: list[int]) -> dict[str, int]:
    rows = conn.execute(
        "select state, count(*) from allocator.bookings where id = any(%s) group by state", (ids,)
    ).fetchall()
    conn.commit()
    return dict(rows)


def test_bookings_created_after_start_are_confirmed_and_notified(
    db_url: str, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    sink = tmp_path / "notifications.jsonl"
    worker = workers("w-confirm", "--notifications", str(sink))
    with psycopg.connect(db_url) as conn:
        ids = book(conn, restaurant(conn, "Worker confirm"), 12)
        assert wait_for(lambda: states(conn, ids) == {"confirmed": 12}), states(conn, ids)
    assert wait_for(
        lambda: (
            sink.exists()
            and len(
                [
                    n
                    for n in map(json.loads, sink.read_text().splitlines())
                    if n["booking_id"] in ids
                ]
            )
            == 12
        )
    )
    assert worker.stop() == 0
    # Each line carries the guest's message, in the restaurant's locale (English by default).
    lines = [n for n in map(json.loads, sink.read_text().splitlines()) if n["booking_id"] in ids]
    assert all(n["message"]["locale"] == "en" for n in lines), lines[0]
    assert all(n["message"]["subject"].startswith("Your table at Worker confirm") for n in lines)


def test_sigkill_loses_nothing(db_url: str, workers: Callable[..., WorkerProcess]) -> None:
    with psycopg.connect(db_url) as conn:
        rid = restaurant(conn, "Worker crash", tables=12)
        # A worker that died holding claims: rows leased to it for 2 s, never processed.
        ids = book(conn, rid, 10)
        conn.execute("select count(*) from allocator.claim_due('dead-worker', 1000, 2)")
        conn.commit()
        victim = workers("w-victim")
        more = book(conn, rid, 30)
        time.sleep(0.3)
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        survivor = workers("w-survivor")
        everything = ids + more
        assert wait_for(lambda: states(conn, everything) == {"confirmed": 40}, 40), states(
            conn, everything
        )
        dup = conn.execute(
            "select allocator.pipeline_report(%s, now() - interval '1 hour')", (rid,)
        ).fetchone()
        violations = conn.execute("select * from allocator.check_invariants()").fetchall()
    assert violations == []
    assert dup is not None and dup[0]["duplicate_processing"] == 0
    assert dup[0]["overlapping_allocations"] == 0
    assert survivor.stop() == 0


def test_listener_reconnects_and_catches_up(
    db_url: str, workers: Callable[..., WorkerProcess]
) -> None:
    worker = workers("w-reconnect")
    with psycopg.connect(db_url, autocommit=True) as admin:
        terminated = admin.execute(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = %s",
            ("allocator-listener:w-reconnect",),
        ).fetchone()
        assert terminated == (1,)
        assert wait_for(lambda: worker.logged("listener lost") >= 1, 10)
        assert wait_for(lambda: worker.logged("listening") >= 2, 15), "the listener reconnected"
        rid = restaurant(admin, "Worker reconnect")
        ids = book(admin, rid, 6)
        assert wait_for(lambda: states(admin, ids) == {"confirmed": 6}), states(admin, ids)
        listeners = admin.execute(
            "select count(*) from pg_stat_activity where application_name = %s",
            ("allocator-listener:w-reconnect",),
        ).fetchone()
    assert listeners == (1,)
    assert worker.stop() == 0


def test_sigterm_is_graceful(db_url: str, workers: Callable[..., WorkerProcess]) -> None:
    worker = workers("w-graceful")
    with psycopg.connect(db_url) as conn:
        assert conn.execute(
            "select count(*) from allocator.leases where name = 'worker:w-graceful'"
        ).fetchone() == (1,)
        conn.commit()
        assert worker.stop() == 0
        assert worker.logged("stopped") == 1
        assert conn.execute(
            "select count(*) from allocator.leases where name = 'worker:w-graceful'"
        ).fetchone() == (0,)
        assert conn.execute(
            "select count(*) from allocator.assignment_queue where leased_by = 'w-graceful' "
            "and lease_expires_at > now()"
        ).fetchone() == (0,)


def test_a_second_worker_with_the_same_name_exits(
    db_url: str, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    first = workers("w-same")
    second = WorkerProcess(db_url, "w-same", tmp_path / "second.log", "--lease-seconds", "3")
    # It waits one lease TTL for a dead holder to lapse; the first is alive, so it gives up.
    assert second.proc.wait(timeout=30) == 3
    assert second.logged("worker name in use by a live worker; choose another --name") == 1
    assert second.logged("started") == 0
    # The first keeps its name and its work.
    assert first.proc.poll() is None
    with psycopg.connect(db_url) as conn:
        owner = conn.execute(
            "select owner from allocator.leases where name = 'worker:w-same'"
        ).fetchone()
        assert owner is not None and owner[0].startswith("w-same@")
        ids = book(conn, restaurant(conn, "Worker same name"), 6)
        assert wait_for(lambda: states(conn, ids) == {"confirmed": 6}), states(conn, ids)
    assert first.stop() == 0


def test_a_worker_takes_the_name_of_one_that_died(
    db_url: str, workers: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    dead = workers("w-reborn", "--lease-seconds", "3")
    dead.proc.kill()
    dead.proc.wait()
    # The dead worker last extended its lease far ahead: however long the new process takes
    # to start, it finds the name held, and waits, since nobody moves the expiry on.
    name = "worker:w-reborn"
    with psycopg.connect(db_url, autocommit=True) as conn:
        moved = "update allocator.leases set expires_at = now() + %s * interval '1 second' where name = %s"
        assert conn.execute(moved, (600, name)).rowcount == 1
        reborn = workers("w-reborn", "--lease-seconds", "3", listening=False)
        assert wait_for(lambda: reborn.logged("worker name in use, waiting") == 1, 60)
        # Then the dead worker's lease lapses (sooner than it said), and the new one starts.
        conn.execute(moved, (1, name))
    assert wait_for(lambda: reborn.logged("listening") == 1, 60), reborn.log.read_text()
    assert reborn.logged("worker name in use, waiting") == 1
    assert reborn.stop() == 0


def test_a_pooling_restaurant_waits_for_the_nightly_run(
    db_url: str, workers: Callable[..., WorkerProcess]
) -> None:
    worker = workers("w-pool")
    with psycopg.connect(db_url) as conn:
        layout = {
            "name": "Worker pooled",
            "timezone": "UTC",
            "settings": {"pooling": {"enabled": True}},
            "tables": [{"label": f"P{i}", "max_capacity": 4} for i in range(3)],
        }
        row = conn.execute(
            "select (allocator.import_layout(%s::jsonb) ->> 'restaurant_id')::bigint",
            (json.dumps(layout),),
        ).fetchone()
        assert row is not None
        rid = int(row[0])
        ids = [
            int(r[0])
            for r in conn.execute(
                "select (allocator.create_booking(%s, 2, date_trunc('day', now()) + interval '3 days 19 hours' "
                "+ g * interval '30 minutes', 90) ->> 'booking_id')::bigint from generate_series(0, 5) g",
                (rid,),
            ).fetchall()
        ]
        conn.commit()
        # The worker defers each booking once, and then leaves it alone until the cut-off.
        assert wait_for(lambda: states(conn, ids) == {"assignment_pending": 6}), states(conn, ids)
        time.sleep(1.0)

        def deferred() -> list[int]:
            return [
                e["booking_id"]
                for e in worker.events()
                if e["event"] == "processed" and e.get("outcome") == "deferred"
            ]

        assert sorted(deferred()) == sorted(ids)
        attempts = conn.execute(
            "select count(*) from allocator.booking_assignment_attempts where booking_id = any(%s)",
            (ids,),
        ).fetchone()
        assert attempts == (0,)
        # At the cut-off (03:30 UTC of their day) the nightly job seats the day at once: with
        # the 15-minute buffer, four of them overlap at 20:30 and three tables seat five.
        conn.execute(
            "select set_config('allocator.clock', "
            "(date_trunc('day', now()) + interval '3 days 3 hours 30 minutes')::text, false)"
        )
        night = conn.execute("select allocator.nightly_optimize(%s)", (rid,)).fetchone()
        # The one left is due at once, at the cut-off: a worker then assigns it online
        # (tests/sql/test_pooling.sql follows it there with the clock at the cut-off).
        due = conn.execute(
            "select q.booking_id from allocator.assignment_queue q "
            "where q.booking_id = any(%s) and q.run_at = allocator.now()",
            (ids,),
        ).fetchall()
        conn.execute("reset allocator.clock")
        conn.commit()
        assert night is not None and night[0]["status"] == "applied", night
        assert night[0]["seated"] == 5 and night[0]["pool_released"] == 1
        assert states(conn, ids) == {"confirmed": 5, "assignment_pending": 1}
        assert len(due) == 1
    assert worker.stop() == 0


def test_without_workers_the_sweep_progresses_the_queue(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        rid = restaurant(conn, "Worker-less")
        ids = book(conn, rid, 5)
        held = conn.execute(
            "select allocator.hold_tables(%s, array[(select min(id) from allocator.tables where restaurant_id = %s)], 1)",
            (ids[0], rid),
        ).fetchone()
        conn.commit()
        assert held is not None
        time.sleep(1.1)
        # What the pg_cron jobs run every minute:
        (expired,) = conn.execute("select allocator.expire_holds()").fetchone()  # type: ignore[misc]
        conn.commit()
        assert expired >= 1
        # The sweep commits after each booking, so it cannot run inside a transaction block...
        with pytest.raises(psycopg.errors.InvalidTransactionTermination):
            conn.execute("call allocator.sweep(500, 'test-sweep')")
        conn.rollback()
        assert states(conn, ids) == {"created": 4, "assignment_pending": 1}
        # The pg_cron job runs as the role that installed it: a member of allocator_ops.
        conn.execute(
            "do $$ begin if not exists (select 1 from pg_roles where rolname = 'allocator_test_sweeper') "
            "then create role allocator_test_sweeper login in role allocator_ops; end if; end $$"
        )
        conn.commit()
    sweeper = make_conninfo(db_url, user="allocator_test_sweeper")
    with psycopg.connect(sweeper, autocommit=True) as conn:
        conn.execute("call allocator.sweep(500, 'test-sweep')")
        assert states(conn, ids) == {"confirmed": 5}
        # ...and each booking was confirmed by a transaction of its own.
        row = conn.execute(
            "select count(distinct xmin::text) from allocator.bookings where id = any(%s)", (ids,)
        ).fetchone()
        assert row == (5,)


def start_tail(db_url: str) -> subprocess.Popen[str]:
    """``allocator events tail``, once it has taken its position (events_position): it
    prints every event committed from then on."""
    name = f"test-tail-{os.getpid()}-{time.monotonic_ns()}"
    tail = subprocess.Popen(
        [sys.executable, "-m", "control.cli", "events", "tail"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": db_url, "PGAPPNAME": name},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    with psycopg.connect(db_url, autocommit=True) as conn:

        def positioned() -> bool:
            row = conn.execute(
                "select count(*) from pg_stat_activity where application_name = %s"
                " and query like '%%events_horizon%%'",
                (name,),
            ).fetchone()
            return row == (1,)

        assert wait_for(positioned, 60), "events tail did not start"
    return tail


def read_until(
    proc: subprocess.Popen[str], wanted: Callable[[list[dict[str, Any]]], bool], timeout: float
) -> list[dict[str, Any]]:
    """JSON lines from a process's stdout until ``wanted(lines)`` holds or ``timeout`` s pass.
    Other tests' events may come first: the tail prints whatever commits in the database."""
    found: queue.Queue[str] = queue.Queue()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            found.put(line)

    threading.Thread(target=reader, daemon=True).start()
    lines: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not wanted(lines) and time.monotonic() < deadline:
        with suppress(queue.Empty):
            lines.append(json.loads(found.get(timeout=max(0.0, deadline - time.monotonic()))))
    return lines


def created_events(lines: list[dict[str, Any]], ids: list[int]) -> list[tuple[int, int]]:
    """(booking id, event id) of the booking.created events of ``ids``, in printed order."""
    return [
        (e["booking_id"], e["id"])
        for e in lines
        if e["topic"] == "booking.created" and e["booking_id"] in ids
    ]


def test_events_tail_prints_events_live(db_url: str, tmp_path: Path) -> None:
    tail = start_tail(db_url)
    try:
        with psycopg.connect(db_url) as conn:
            (booking_id,) = book(conn, restaurant(conn, "Tail"), 1)
        lines = read_until(tail, lambda ls: bool(created_events(ls, [booking_id])), timeout=15)
    finally:
        tail.terminate()
        tail.wait(timeout=10)
    assert [b for b, _ in created_events(lines, [booking_id])] == [booking_id], lines


def test_events_tail_does_not_miss_a_late_commit(db_url: str) -> None:
    with psycopg.connect(db_url) as setup:
        rid = restaurant(setup, "Tail late")
    tail = start_tail(db_url)
    try:
        with psycopg.connect(db_url) as early, psycopg.connect(db_url) as late:
            # The early transaction writes its event first but commits last: its event id is
            # lower than the other one's, which is already visible when it commits.
            row = early.execute(
                "select (allocator.create_booking(%s, 2, now() + interval '2 days', 90) ->> 'booking_id')::bigint",
                (rid,),
            ).fetchone()
            assert row is not None
            early_id = int(row[0])
            (late_id,) = book(late, rid, 1)
            time.sleep(1.5)  # the tail polls meanwhile
            early.commit()
        ours = [early_id, late_id]
        lines = read_until(tail, lambda ls: len(created_events(ls, ours)) == 2, timeout=15)
    finally:
        tail.terminate()
        tail.wait(timeout=10)
    created = created_events(lines, ours)
    assert [booking for booking, _ in created] == [early_id, late_id], lines
    assert created[0][1] < created[1][1], "the early event has the lower id, and is not skipped"


def test_only_events_that_give_a_worker_work_notify(db_url: str) -> None:
    """A booking created, or put back on the queue by anyone but a worker, NOTIFYs its event
    id; a worker's own transitions and the other events are read with read_events."""
    with (
        psycopg.connect(db_url, autocommit=True) as listener,
        psycopg.connect(db_url, autocommit=True) as conn,
    ):
        listener.execute("listen allocator_events")
        rid = restaurant(conn, "Notify wake-ups")

        def notified_topics() -> list[str]:
            ids = [int(n.payload) for n in listener.notifies(timeout=1.0)]
            rows = conn.execute(
                "select topic from allocator.events where id = any(%s) order by id", (ids,)
            ).fetchall()
            return [topic for (topic,) in rows]

        (booking_id,) = book(conn, rid, 1)
        conn.execute("select allocator.process_booking(%s, 'notify-test')", (booking_id,))
        processed = notified_topics()
        (held_id,) = book(conn, rid, 1)
        table = conn.execute(
            "select id from allocator.tables where restaurant_id = %s"
            " and id not in (select table_id from allocator.allocations where booking_id = %s)"
            " order by id limit 1",
            (rid, booking_id),
        ).fetchone()
        assert table is not None
        notified_topics()
        hold = conn.execute(
            "select allocator.hold_tables(%s, array[%s]::bigint[])", (held_id, table[0])
        ).fetchone()
        assert hold is not None
        conn.execute(
            "select allocator.release_hold(%s, 'app:test', 'guest changed their mind')",
            (hold[0]["hold_id"],),
        )
        released = notified_topics()
        written = conn.execute(
            "select count(*) from allocator.events where booking_id = %s", (booking_id,)
        ).fetchone()
    assert processed == ["booking.created"], "a worker's own transitions notify nobody"
    assert written is not None and written[0] >= 6, "every transition still writes its event"
    assert released == ["booking.assignment_pending"], "a released hold gives a worker work"
