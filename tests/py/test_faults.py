"""Injected faults with real processes: a PostgreSQL fast restart in the middle of a run, a
connection silently cut by a proxy, a clock jump. After each: no invariant broken, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from control.cluster import Cluster
from tests.conftest import private_cluster

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except psycopg.OperationalError:
            pass
        time.sleep(step)
    return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if os.environ.get("DATABASE_URL"):
        pytest.skip("restarts a cluster of its own")
    with private_cluster(tmp_path_factory.mktemp("faults")) as c:
        yield c


def start_worker(url: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "control.cli", "worker", "--name", name, "--poll-interval", "0.2"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )


def sample_restaurant(url: str, name: str) -> int:
    layout = json.loads((ROOT / "data" / "sample_restaurant.json").read_text())
    layout["name"] = name
    layout["settings"]["retry"] = {"max_attempts": 4, "base_delay_ms": 50, "max_delay_ms": 400}
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select allocator.import_layout(%s::jsonb)", (json.dumps(layout),)
        ).fetchone()
    assert row is not None
    return int(row[0]["restaurant_id"])


def create_with_retry(url: str, restaurant_id: int, items: list[tuple[int, int]]) -> int:
    """What a careful client does: retry on a lost connection with the same idempotency key."""
    done = 0
    for i, party in items:
        for attempt in range(100):
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
                    conn.execute(
                        "select allocator.create_booking(%s, %s, date_trunc('hour', now()) + interval '1 day'"
                        " + %s * interval '15 minutes', p_idempotency_key => %s)",
                        (restaurant_id, party, i % 40, f"fault-{restaurant_id}-{i}"),
                    )
                done += 1
                break
            except psycopg.OperationalError:
                time.sleep(0.1 * min(attempt + 1, 10))
    return done


def settled(url: str, restaurant_id: int) -> tuple[int, int]:
    with psycopg.connect(url, connect_timeout=3) as conn:
        row = conn.execute(
            "select count(*), count(*) filter (where allocator.is_settled(state)) "
            "from allocator.bookings where restaurant_id = %s",
            (restaurant_id,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def log_events(log: Path) -> list[str]:
    return [
        json.loads(line)["event"] for line in log.read_text().splitlines() if line.startswith("{")
    ]


def test_fast_restart_in_the_middle_of_a_run(cluster: Cluster, tmp_path: Path, soak: bool) -> None:
    url = cluster.url()
    rid = sample_restaurant(url, "Restart")
    logs = [tmp_path / "w0.log", tmp_path / "w1.log"]
    workers = [start_worker(url, f"restart-{i}", log) for i, log in enumerate(logs)]
    assert wait_for(lambda: all("listening" in log_events(log) for log in logs), 30)
    total = 5000 if soak else 500
    items = [(i, [1, 2, 2, 2, 3, 4, 4, 5, 6, 8][i % 10]) for i in range(total)]
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(create_with_retry, url, rid, items[k::4]) for k in range(4)]
        assert wait_for(lambda: settled(url, rid)[0] >= total // 3, 60)
        cluster.stop()  # pg_ctl stop -m fast: every connection is cut
        time.sleep(0.5)
        cluster.start()
        created = sum(f.result() for f in futures)
    assert created == total
    assert wait_for(lambda: settled(url, rid) == (total, total), 900 if soak else 120), settled(
        url, rid
    )
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    assert [w.wait(timeout=30) for w in workers] == [0, 0]
    for log in logs:
        events = log_events(log)
        assert "listener lost" in events and events.count("listening") >= 2, (
            "each worker reconnected"
        )
    with psycopg.connect(url) as conn:
        violations = conn.execute("select * from allocator.check_invariants()").fetchall()
        report = conn.execute(
            "select allocator.pipeline_report(%s, now() - interval '1 hour')", (rid,)
        ).fetchone()
    assert violations == []
    assert report is not None and report[0]["duplicate_processing"] == 0


class BlackholeProxy:
    """Forwards TCP to PostgreSQL until ``cut()``: then existing connections stop carrying
    bytes without being closed (a silently dead network path); new ones work."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.generation = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            generation = self.generation
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b, generation), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, generation: int) -> None:
        while not self.stopped:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                return
            if generation != self.generation:
                continue  # swallowed: the path is dead, the sockets stay open
            try:
                dst.sendall(data)
            except OSError:
                return

    def cut(self) -> None:
        self.generation += 1

    def close(self) -> None:
        self.stopped = True
        self.server.close()


def test_silently_cut_connection_is_noticed(cluster: Cluster, tmp_path: Path) -> None:
    proxy = BlackholeProxy(cluster.port)
    url = make_conninfo(cluster.url(), host="127.0.0.1", port=str(proxy.port))
    log = tmp_path / "w.log"
    worker = start_worker(url, "cut", log)
    try:
        assert wait_for(lambda: "listening" in log_events(log), 20)
        proxy.cut()
        rid = sample_restaurant(cluster.url(), "Cut")
        assert create_with_retry(cluster.url(), rid, [(i, 2) for i in range(5)]) == 5
        assert wait_for(lambda: log_events(log).count("listening") >= 2, 60), log_events(log)
        assert wait_for(lambda: settled(cluster.url(), rid) == (5, 5), 60), settled(
            cluster.url(), rid
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
        proxy.close()
    assert code == 0
    assert "listener lost" in log_events(log)


def test_clock_jumps(cluster: Cluster) -> None:
    url = cluster.url()
    rid = sample_restaurant(url, "Clock")
    with psycopg.connect(url, autocommit=True) as conn:
        ids = []
        for i in range(6):
            row = conn.execute(
                "select (allocator.create_booking(%s, 2, date_trunc('hour', now()) + interval '2 days'"
                " + %s * interval '3 hours', 90) ->> 'booking_id')::bigint",
                (rid, i),
            ).fetchone()
            assert row is not None
            ids.append(row[0])
        conn.execute(
            "select allocator.hold_tables(%s, array[(select min(id) from allocator.tables where restaurant_id = %s)], 300)",
            (ids[0], rid),
        )
        # Backwards: an hour ago nothing was due yet; the sweep must not process or break anything.
        conn.execute(
            "select set_config('allocator.clock', (now() - interval '1 hour')::text, false)"
        )
        assert conn.execute("select allocator.run_due(100, 'clock')").fetchone() == (0,)
        assert conn.execute("select allocator.expire_holds()").fetchone() == (0,)
        # Forwards an hour: the hold is overdue and every booking is due.
        conn.execute(
            "select set_config('allocator.clock', (now() + interval '1 hour')::text, false)"
        )
        assert conn.execute("select allocator.expire_holds()").fetchone() == (1,)
        conn.execute("select allocator.run_due(100, 'clock')")
        conn.execute("reset allocator.clock")
        states = dict(
            conn.execute(
                "select state, count(*) from allocator.bookings where id = any(%s) group by state",
                (ids,),
            ).fetchall()
        )
        violations = conn.execute("select * from allocator.check_invariants()").fetchall()
    assert states == {"confirmed": 6}
    assert violations == []


KILLED_CLIENT = """
import sys, time, psycopg
conn = psycopg.connect(sys.argv[1])
conn.execute("select allocator.process_booking(%s, 'doomed')", (int(sys.argv[2]),))
print("inside", flush=True)
time.sleep(600)
"""


def test_sigkill_inside_a_transaction(cluster: Cluster, tmp_path: Path) -> None:
    url = cluster.url()
    rid = sample_restaurant(url, "Killed inside")
    assert create_with_retry(url, rid, [(0, 2)]) == 1
    with psycopg.connect(url, autocommit=True) as conn:
        (booking_id,) = conn.execute(
            "select id from allocator.bookings where restaurant_id = %s", (rid,)
        ).fetchone()  # type: ignore[misc]
    doomed = subprocess.Popen(
        [sys.executable, "-c", KILLED_CLIENT, url, str(booking_id)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert doomed.stdout is not None and doomed.stdout.readline().strip() == "inside"
    # It holds the booking's row lock and advisory lock in an open transaction: kill it there.
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    log = tmp_path / "w.log"
    worker = start_worker(url, "after-kill", log)
    try:
        assert wait_for(lambda: settled(url, rid) == (1, 1), 30), settled(url, rid)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    with psycopg.connect(url) as conn:
        attempts = conn.execute(
            "select worker, result from allocator.booking_assignment_attempts where booking_id = %s",
            (booking_id,),
        ).fetchall()
        violations = conn.execute("select * from allocator.check_invariants()").fetchall()
    assert attempts == [("after-kill", "confirmed")], "the killed transaction left no trace"
    assert violations == []
