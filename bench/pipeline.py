"""`python -m bench pipeline` (`allocator bench pipeline`): the booking pipeline under load,
against pgbench.

Three scenarios, each on restaurants created for it (and deleted afterwards):

* ``burst``: N bookings created at once from 8 connections while the workers run, spread
  over copies of ``data/sample_restaurant.json`` and over a week, so nearly all fit;
* ``steady``: bookings arriving at a fixed rate for a duration (default rate: half the
  confirmed/s the burst measured);
* ``contention``: many bookings for the same slot on a four-table restaurant.

Workers are real ``allocator worker --concurrency 2`` processes, as ``allocator demo``
starts them. What is measured (docs/performance.md explains it at length):

* created -> confirmed, **as a client sees it**: from the moment the bench sends
  ``create_booking`` to the moment a connection polling the events every 5 ms first sees
  the ``booking.confirmed`` event, i.e. after the confirming transaction committed;
* the same on the server clock: the ``created`` history row (create transaction start) to
  the ``finished_at`` of the confirming attempt (end of process_booking, before commit);
* pipeline_report's figure (history rows only: both ends are transaction *start* times, so
  it leaves out the confirming transaction's own work and commit);
* where a booking's time goes: queue wait (created -> first attempt starts), processing
  (the confirming attempt's duration) and commit until the event is seen;
* lock wait P95 (attempt metadata ``lock_wait_ms``), lease wait P95 (``lease_waits`` rows
  written during the run), duplicate processing and overlapping allocations
  (``pipeline_report``), confirmed per second (confirmed / first create to last confirm);
* a wait profile: ``pg_stat_activity`` sampled every 50 ms during the run.

With ``--pgbench`` the same cluster then runs ``pgbench -i -s 10`` and
``pgbench -c 8 -j 2 -T 20`` in a scratch database, dropped afterwards.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.conninfo import make_conninfo
from rich.console import Console
from rich.table import Table

from bench.pgbench_rpc import pgbench_base, run_rpc_scripts
from control.cluster import project_root
from control.db import database_url
from control.demo import PARTY_SIZES, PARTY_WEIGHTS
from control.queries import query

SCENARIOS = ("burst", "steady", "contention")
CLIENT_APP = "allocator-bench"
CLIENT_CONNECTIONS = 8
BOOKINGS_PER_RESTAURANT = 100
TIMEZONE = "Europe/Rome"
SAMPLE_LAYOUT = Path("data") / "sample_restaurant.json"
TERMINAL = ("confirmed", "manual_review", "failed", "cancelled")

# The targets docs/performance.md tracks.
TARGET_BURST_P95_MS = 1000.0
TARGET_STEADY_P95_MS = 50.0
TARGET_WAIT_P95_MS = 5.0
TARGET_PGBENCH_SHARE = 0.5
TARGET_ASYNC_SHARE = 0.15

# Measurement queries of this benchmark only (read-only, over the run's restaurants).
SQL: dict[str, str] = {
    "last_event": "select max(id) from allocator.events",
    "events_after": """
        select id from allocator.events
         where id > %(after)s and topic = 'booking.confirmed' order by id limit 5000
    """,
    "current_database": "select current_database()",
    "clock": "select extract(epoch from clock_timestamp())::float8",
    "schema_ready": (
        "select to_regprocedure('allocator.pipeline_report(bigint, timestamptz)') is not null"
    ),
    "settled": """
        select count(*) filter (where b.state in ('confirmed', 'manual_review', 'failed',
                                                  'cancelled')), count(*)
          from allocator.bookings b where b.restaurant_id = any (%(restaurants)s)""",
    "listeners": """
        select count(*) from pg_catalog.pg_stat_activity
         where datname = current_database() and application_name = any (%(names)s)""",
    "bookings": """
        select b.id, b.state,
               extract(epoch from c.created_at)::float8 as created,
               extract(epoch from h.confirmed_at)::float8 as confirmed_tx,
               extract(epoch from (a.metadata ->> 'started_at')::timestamptz)::float8
                 as confirm_started,
               extract(epoch from (a.metadata ->> 'finished_at')::timestamptz)::float8
                 as confirm_done,
               extract(epoch from f.first_started)::float8 as first_started,
               extract(epoch from f.last_finished)::float8 as last_finished,
               coalesce(f.attempts, 0) as attempts
          from allocator.bookings b
          join allocator.booking_state_history c
            on c.restaurant_id = b.restaurant_id and c.booking_id = b.id and c.from_state is null
          left join lateral (
            select min(x.created_at) as confirmed_at from allocator.booking_state_history x
             where x.restaurant_id = b.restaurant_id and x.booking_id = b.id
               and x.to_state = 'confirmed') h on true
          left join lateral (
            select x.metadata from allocator.booking_assignment_attempts x
             where x.restaurant_id = b.restaurant_id and x.booking_id = b.id
               and x.result = 'confirmed'
             order by x.id limit 1) a on true
          left join lateral (
            select min((x.metadata ->> 'started_at')::timestamptz) as first_started,
                   max((x.metadata ->> 'finished_at')::timestamptz) as last_finished,
                   count(*) as attempts
              from allocator.booking_assignment_attempts x
             where x.restaurant_id = b.restaurant_id and x.booking_id = b.id) f on true
         where b.restaurant_id = any (%(restaurants)s)""",
    "confirmed_events": """
        select e.id, e.booking_id from allocator.events e
         where e.restaurant_id = any (%(restaurants)s) and e.topic = 'booking.confirmed'""",
    "lock_waits": """
        select (a.metadata ->> 'lock_wait_ms')::float8
          from allocator.booking_assignment_attempts a
         where a.restaurant_id = any (%(restaurants)s) and a.metadata ? 'lock_wait_ms'""",
    "lease_waits": """
        select w.waited_ms::float8 from allocator.lease_waits w
         where w.created_at between to_timestamp(%(since)s) and to_timestamp(%(until)s)""",
    "attempt_results": """
        select a.result, count(*) from allocator.booking_assignment_attempts a
         where a.restaurant_id = any (%(restaurants)s) group by a.result order by 2 desc""",
    "retry_reasons": """
        select coalesce(h.reason, '-'), count(*) from allocator.booking_state_history h
         where h.restaurant_id = any (%(restaurants)s)
           and h.from_state = 'assignment_in_progress' and h.to_state = 'assignment_pending'
         group by 1 order by 2 desc""",
    "activity": """
        select application_name, state, wait_event_type, wait_event, left(query, 200)
          from pg_catalog.pg_stat_activity
         where datname = current_database() and pid <> pg_backend_pid()
           and backend_type = 'client backend' and state <> 'idle'""",
    "server_settings": """
        select name, setting || coalesce(' ' || unit, '') from pg_catalog.pg_settings
         where name in ('server_version', 'shared_buffers', 'synchronous_commit', 'fsync',
                        'wal_sync_method', 'commit_delay', 'max_connections', 'work_mem',
                        'jit', 'wal_level', 'max_wal_size', 'checkpoint_timeout')
         order by name""",
}


# ----------------------------------------------------------------------------------------
# Small helpers


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) with linear interpolation, as percentile_cont; None if empty."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summarize(values: Sequence[float], digits: int = 1) -> dict[str, Any]:
    """n, mean, P50, P95, P99 and max of a list of milliseconds, rounded."""

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, digits)

    return {
        "n": len(values),
        "mean": r(sum(values) / len(values)) if values else None,
        "p50": r(percentile(values, 0.50)),
        "p95": r(percentile(values, 0.95)),
        "p99": r(percentile(values, 0.99)),
        "max": r(max(values)) if values else None,
    }


def _connect(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(url, autocommit=True, application_name=CLIENT_APP)


def _scalar(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def clock_offset(conn: psycopg.Connection[Any]) -> float:
    """Seconds to add to a server epoch to get this machine's time.time() (RTT/2 method)."""
    best: tuple[float, float] | None = None
    for _ in range(5):
        t0 = time.time()
        server = float(_scalar(conn, SQL["clock"]))
        t1 = time.time()
        if best is None or t1 - t0 < best[0]:
            best = (t1 - t0, (t0 + t1) / 2 - server)
    assert best is not None
    return best[1]


# ----------------------------------------------------------------------------------------
# Restaurants, bookings and workers


def sample_layout() -> dict[str, Any]:
    """The demo layout (data/sample_restaurant.json)."""
    layout: dict[str, Any] = json.loads((project_root() / SAMPLE_LAYOUT).read_text())
    return layout


def contention_layout(tables: int = 4) -> dict[str, Any]:
    """A small restaurant: ``tables`` single tables for 1 to 4, none combinable."""
    return {
        "name": "contention",
        "timezone": TIMEZONE,
        "zones": [{"name": "Room"}],
        "tables": [
            {
                "label": f"C{i + 1}",
                "zone": "Room",
                "min_capacity": 1,
                "max_capacity": 4,
                "combinable": False,
            }
            for i in range(tables)
        ],
        "adjacency": [],
    }


def create_restaurants(url: str, layout: dict[str, Any], names: list[str]) -> list[int]:
    """Import ``layout`` once per name; returns the new restaurant ids."""
    ids = []
    with _connect(url) as conn:
        for name in names:
            row = conn.execute(
                query("import_layout"), {"layout": json.dumps({**layout, "name": name})}
            ).fetchone()
            assert row is not None
            ids.append(int(row[0]["restaurant_id"]))
    return ids


def delete_restaurants(url: str, ids: list[int]) -> None:
    """Delete the benchmark's restaurants with their bookings and history."""
    with _connect(url) as conn:
        for restaurant_id in ids:
            conn.execute(query("delete_restaurant"), {"restaurant_id": restaurant_id})


Request = tuple[int, int, datetime]  # restaurant id, party size, start


def spread_requests(restaurants: list[int], count: int, rng: random.Random) -> list[Request]:
    """Bookings spread round-robin over restaurants, over the next 7 days, 11:00-22:00 local,
    with the demo's party-size mix."""
    tz = ZoneInfo(TIMEZONE)
    today = datetime.now(tz).date()
    out: list[Request] = []
    for i in range(count):
        day = today + timedelta(days=1 + rng.randrange(7))
        minute = 11 * 60 + rng.randrange(0, 11 * 60 + 1, 15)
        start = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz)
        party = rng.choices(PARTY_SIZES, PARTY_WEIGHTS)[0]
        out.append((restaurants[i % len(restaurants)], party, start))
    return out


def same_slot_requests(restaurant_id: int, count: int) -> list[Request]:
    """``count`` parties of two, all tomorrow at 20:00 local."""
    tz = ZoneInfo(TIMEZONE)
    day = datetime.now(tz).date() + timedelta(days=1)
    start = datetime(day.year, day.month, day.day, 20, 0, tzinfo=tz)
    return [(restaurant_id, 2, start)] * count


@dataclass
class Created:
    """One create_booking call as the client saw it (time.time() seconds)."""

    index: int
    booking_id: int | None
    sent: float
    returned: float
    due: float | None = None
    error: str | None = None


def _create(conn: psycopg.Connection[Any], key: str, request: Request) -> int:
    restaurant_id, party, start = request
    row = conn.execute(query("create_booking"), (restaurant_id, party, start, None, key, None))
    result = row.fetchone()
    assert result is not None
    return int(result[0]["booking_id"])


def push(
    url: str,
    requests: list[Request],
    key_prefix: str,
    rate: float | None = None,
    connections: int = CLIENT_CONNECTIONS,
) -> list[Created]:
    """Create the bookings from ``connections`` connections at once; with ``rate``, booking i
    is sent at start + i / rate (a booking behind schedule is sent at once)."""
    lock = threading.Lock()
    next_index = [0]
    t_start = time.time() + 0.05

    def run() -> list[Created]:
        done: list[Created] = []
        with _connect(url) as conn:
            while True:
                with lock:
                    i = next_index[0]
                    next_index[0] += 1
                if i >= len(requests):
                    return done
                due = None
                if rate:
                    due = t_start + i / rate
                    delay = due - time.time()
                    if delay > 0:
                        time.sleep(delay)
                sent = time.time()
                try:
                    booking_id: int | None = _create(conn, f"{key_prefix}-{i}", requests[i])
                    error = None
                except psycopg.Error as exc:
                    booking_id, error = None, f"{exc.sqlstate}: {exc}"
                done.append(Created(i, booking_id, sent, time.time(), due, error))

    with ThreadPoolExecutor(connections) as pool:
        chunks = list(pool.map(lambda _: run(), range(connections)))
    return sorted((c for chunk in chunks for c in chunk), key=lambda c: c.index)


@dataclass
class Workers:
    """``allocator worker --concurrency 2`` processes, as control/demo.py starts them."""

    url: str
    count: int
    tag: str
    log_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """The worker names (their leases are ``worker:<name>``)."""
        return [f"bench-{self.tag}-{i}" for i in range(self.count)]

    def start(self, timeout: float = 30.0) -> None:
        """Start the processes and wait until each one listens for allocator_events."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in self.names:
            log_file = (self.log_dir / f"{name}.log").open("ab")
            self.procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "control.cli",
                        "worker",
                        "--concurrency",
                        "2",
                        "--name",
                        name,
                        "--notifications",
                        str(self.log_dir / "notifications.jsonl"),
                    ],
                    env={**os.environ, "DATABASE_URL": self.url},
                    stdout=log_file,
                    stderr=log_file,
                )
            )
        listeners = [f"allocator-listener:{name}" for name in self.names]
        deadline = time.monotonic() + timeout
        with _connect(self.url) as conn:
            while time.monotonic() < deadline:
                if any(proc.poll() is not None for proc in self.procs):
                    raise RuntimeError(f"a worker exited at start; logs in {self.log_dir}")
                if _scalar(conn, SQL["listeners"], {"names": listeners}) >= self.count:
                    return
                time.sleep(0.05)
        raise RuntimeError(f"workers not listening after {timeout:.0f} s; logs in {self.log_dir}")

    def peak_rss_mb(self) -> list[float | None]:
        """Each running worker's peak resident memory (VmHWM), in MB."""
        out: list[float | None] = []
        for proc in self.procs:
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
                kb = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmHWM"))
                out.append(round(kb / 1024, 1))
            except (OSError, StopIteration, ValueError):
                out.append(None)
        return out

    def stop(self) -> list[int]:
        """SIGTERM each worker and wait for it (SIGKILL after 30 s); returns exit codes."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(timeout=30))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        return codes


class Listener(threading.Thread):
    """Read the events committed since the start every 5 ms, as a subscriber would (the
    workers' own transitions send no NOTIFY), and note when each event id is first seen
    (time.time())."""

    def __init__(self, url: str, interval: float = 0.005) -> None:
        super().__init__(name="bench-listener", daemon=True)
        self.url = url
        self.interval = interval
        self.received: dict[int, float] = {}
        self.ready = threading.Event()
        self.halt = threading.Event()

    def run(self) -> None:
        """Poll until halted."""
        with _connect(self.url) as conn:
            last = int(_scalar(conn, SQL["last_event"]) or 0)
            self.ready.set()
            while not self.halt.wait(self.interval):
                rows = conn.execute(SQL["events_after"], {"after": last}).fetchall()
                now = time.time()
                for (event_id,) in rows:
                    self.received.setdefault(int(event_id), now)
                    last = max(last, int(event_id))


class Sampler(threading.Thread):
    """Samples pg_stat_activity of the benchmark database: who is doing what, waiting on what."""

    def __init__(self, url: str, interval: float = 0.05) -> None:
        super().__init__(name="bench-sampler", daemon=True)
        self.url = url
        self.interval = interval
        self.samples = 0
        self.seen: Counter[tuple[str, str, str]] = Counter()
        self.halt = threading.Event()

    @staticmethod
    def classify(
        app: str, state: str, wtype: str | None, wevent: str | None, sql: str
    ) -> tuple[str, str, str]:
        """(who, what, waiting on) of one active backend."""
        who = "client" if app == CLIENT_APP else "listener" if "listener" in app else "worker"
        found = re.search(r"allocator\.(\w+)", sql or "")
        what = found.group(1) if found else (sql or "").split(" ", 1)[0][:30] or "-"
        if state == "idle in transaction":
            wait = "idle in transaction"
        elif wtype:
            wait = f"{wtype}:{wevent}"
        else:
            wait = "CPU"
        return who, what, wait

    def run(self) -> None:
        """Sample until halted."""
        with _connect(self.url) as conn:
            while not self.halt.wait(self.interval):
                rows = conn.execute(SQL["activity"]).fetchall()
                self.samples += 1
                for app, state, wtype, wevent, sql in rows:
                    self.seen[self.classify(app or "", state or "", wtype, wevent, sql)] += 1

    def profile(self, top: int = 15) -> dict[str, Any]:
        """The most frequent (who, what, wait) triples with their share of observations."""
        total = sum(self.seen.values())
        return {
            "samples": self.samples,
            "interval_ms": self.interval * 1000,
            "mean_active_backends": round(total / self.samples, 2) if self.samples else None,
            "top": [
                {"who": who, "what": what, "wait": wait, "share": round(n / total, 4)}
                for (who, what, wait), n in self.seen.most_common(top)
            ],
            "by_wait": {
                wait: round(n / total, 4)
                for wait, n in _sum_by(self.seen, lambda k: k[2]).most_common()
            },
            "by_what": {
                what: round(n / total, 4)
                for what, n in _sum_by(self.seen, lambda k: f"{k[0]} {k[1]}").most_common()
            },
        }


def _sum_by(
    counts: Counter[tuple[str, str, str]], key: Callable[[tuple[str, str, str]], str]
) -> Counter[str]:
    out: Counter[str] = Counter()
    for k, n in counts.items():
        out[key(k)] += n
    return out


# ----------------------------------------------------------------------------------------
# One scenario


@dataclass
class Scenario:
    """What to run: restaurants to create and the bookings to push."""

    name: str
    layout: dict[str, Any]
    restaurants: int
    bookings: int
    rate: float | None = None
    timeout: float = 120.0


def wait_settled(url: str, restaurants: list[int], expected: int, timeout: float) -> int:
    """Poll until every booking of the restaurants is settled; returns how many are not."""
    deadline = time.monotonic() + timeout
    with _connect(url) as conn:
        while True:
            row = conn.execute(SQL["settled"], {"restaurants": restaurants}).fetchone()
            assert row is not None
            settled, total = int(row[0]), int(row[1])
            if (settled >= expected and total >= expected) or time.monotonic() > deadline:
                return max(total, expected) - settled
            time.sleep(0.05)


def run_scenario(
    url: str, scenario: Scenario, workers: int, run_id: str, seed: int, console: Console
) -> dict[str, Any]:
    """Run one scenario end to end and return its figures."""
    rng = random.Random(seed)
    names = [f"bench {scenario.name} {run_id} #{i + 1}" for i in range(scenario.restaurants)]
    restaurant_ids = create_restaurants(url, scenario.layout, names)
    if scenario.name == "contention":
        requests = same_slot_requests(restaurant_ids[0], scenario.bookings)
    else:
        requests = spread_requests(restaurant_ids, scenario.bookings, rng)

    with _connect(url) as conn:
        offset = clock_offset(conn)
        since = float(_scalar(conn, SQL["clock"]))
    log_dir = Path(tempfile.mkdtemp(prefix=f"allocator-bench-{scenario.name}-"))
    listener, sampler = Listener(url), Sampler(url)
    pool = Workers(url, workers, f"{scenario.name}-{run_id}", log_dir)
    listener.start()
    listener.ready.wait(10)
    codes: list[int] = []
    created: list[Created] = []
    unsettled = scenario.bookings
    t0 = time.monotonic()
    try:
        pool.start()
        sampler.start()
        t_push = time.monotonic()
        created = push(url, requests, f"bench-{run_id}-{scenario.name}", scenario.rate)
        push_s = time.monotonic() - t_push
        ok = sum(1 for c in created if c.booking_id is not None)
        unsettled = wait_settled(url, restaurant_ids, ok, scenario.timeout)
        elapsed = time.monotonic() - t0
    finally:
        worker_rss = pool.peak_rss_mb()
        codes = pool.stop()
        sampler.halt.set()
        time.sleep(0.2)  # the last notifications
        listener.halt.set()
        listener.join(5)
        sampler.join(5)

    with _connect(url) as conn:
        until = float(_scalar(conn, SQL["clock"]))
        figures = collect(conn, restaurant_ids, since, until, created, listener.received, offset)
    figures.update(
        scenario=scenario.name,
        restaurants=len(restaurant_ids),
        restaurant_ids=restaurant_ids,
        requested=scenario.bookings,
        rate_per_s=scenario.rate,
        create_errors=sum(1 for c in created if c.error),
        create_error_sample=next((c.error for c in created if c.error), None),
        unsettled=unsettled,
        worker_peak_rss_mb=worker_rss,
        push_s=round(push_s, 3),
        create_per_s=round(len(created) / push_s, 1) if push_s else None,
        elapsed_s=round(elapsed, 2),
        worker_exit_codes=codes,
        wait_profile=sampler.profile(),
        load_average_after=[round(v, 2) for v in os.getloadavg()],
    )
    if scenario.rate:
        lags = [(c.sent - c.due) * 1000 for c in created if c.due is not None]
        figures["arrival_lag_ms"] = summarize(lags)
    if any(codes):
        console.print(f"[red]a worker exited with {codes}; logs kept in {log_dir}[/red]")
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    return figures


def collect(
    conn: psycopg.Connection[Any],
    restaurants: list[int],
    since: float,
    until: float,
    created: list[Created],
    received: dict[int, float],
    offset: float,
) -> dict[str, Any]:
    """Read what the run did from the database and turn it into figures (ms, per second)."""
    params = {"restaurants": restaurants, "since": since, "until": until}
    since_ts = datetime.fromtimestamp(since, UTC)
    reports = []
    for restaurant_id in restaurants:
        report = _scalar(conn, query("pipeline_report"), (restaurant_id, since_ts))
        reports.append(dict(report))

    sent = {c.booking_id: c.sent for c in created if c.booking_id is not None}
    confirmed_seen: dict[int, float] = {}
    for event_id, booking_id in conn.execute(SQL["confirmed_events"], params).fetchall():
        if event_id in received:
            at = received[event_id]
            confirmed_seen[booking_id] = min(at, confirmed_seen.get(booking_id, at))

    client_ms: list[float] = []
    server_ms: list[float] = []
    client_timeline: list[tuple[float, float]] = []  # (created, ms) of each confirmed booking
    server_timeline: list[tuple[float, float]] = []
    tx_ms: list[float] = []
    queue_ms: list[float] = []
    process_ms: list[float] = []
    commit_ms: list[float] = []
    settle_ms: list[float] = []
    first_created: float | None = None
    last_confirmed: float | None = None
    states: Counter[str] = Counter()
    rows = conn.execute(SQL["bookings"], params).fetchall()
    for booking_id, state, t_created, t_conf_tx, t_started, t_done, t_first, t_last, _n in rows:
        states[state] += 1
        first_created = t_created if first_created is None else min(first_created, t_created)
        if t_first is not None:
            queue_ms.append((t_first - t_created) * 1000)
        if state in TERMINAL and t_last is not None:
            settle_ms.append((t_last - t_created) * 1000)
        if state != "confirmed":
            continue
        if t_conf_tx is not None:
            tx_ms.append((t_conf_tx - t_created) * 1000)
        if t_done is not None and t_started is not None:
            server_ms.append((t_done - t_created) * 1000)
            server_timeline.append((t_created, server_ms[-1]))
            process_ms.append((t_done - t_started) * 1000)
            last_confirmed = t_done if last_confirmed is None else max(last_confirmed, t_done)
            if booking_id in confirmed_seen:
                commit_ms.append((confirmed_seen[booking_id] - (t_done + offset)) * 1000)
        if booking_id in sent and booking_id in confirmed_seen:
            client_ms.append((confirmed_seen[booking_id] - sent[booking_id]) * 1000)
            client_timeline.append((t_created, client_ms[-1]))

    confirmed = states.get("confirmed", 0)
    span = (last_confirmed - first_created) if first_created and last_confirmed else None
    # The client-side figure needs booking.confirmed NOTIFYs; without them (or when some were
    # not seen), the server clock is the measure.
    source = "client" if confirmed and len(client_ms) >= 0.9 * confirmed else "server"
    lock_waits = [float(r[0]) for r in conn.execute(SQL["lock_waits"], params).fetchall()]
    lease_waits = [float(r[0]) for r in conn.execute(SQL["lease_waits"], params).fetchall()]
    calls = [(c.returned - c.sent) * 1000 for c in created if c.booking_id is not None]
    return {
        "bookings": len(rows),
        "confirmed": confirmed,
        "manual_review": states.get("manual_review", 0),
        "failed": states.get("failed", 0),
        "states": dict(states),
        "duplicate_processing": sum(int(r["duplicate_processing"]) for r in reports),
        "overlapping_allocations": sum(int(r["overlapping_allocations"]) for r in reports),
        "latency_source": source,
        "latency_ms": summarize(client_ms if source == "client" else server_ms),
        "client_latency_ms": summarize(client_ms),
        "server_latency_ms": summarize(server_ms),
        "report_latency_ms": summarize(tx_ms),
        "settle_latency_ms": summarize(settle_ms),
        "breakdown_ms": {
            "queue_wait": summarize(queue_ms),
            "processing": summarize(process_ms),
            "commit_and_seen": summarize(commit_ms),
            "create_call": summarize(calls),
        },
        "lock_wait_ms": summarize(lock_waits, 3),
        "lease_wait_ms": summarize(lease_waits, 3),
        "attempt_results": dict(conn.execute(SQL["attempt_results"], params).fetchall()),
        "retry_reasons": dict(conn.execute(SQL["retry_reasons"], params).fetchall()),
        "confirmed_per_s": round(confirmed / span, 1) if span else None,
        "span_s": round(span, 3) if span else None,
        "pipeline_reports": reports,
        "latency_samples_ms": [
            round(v, 2) for v in (client_ms if source == "client" else server_ms)
        ],
        "settle_samples_ms": [round(v, 2) for v in settle_ms],
        "latency_timeline": [
            [round(t - (first_created or t), 3), round(ms, 2)]
            for t, ms in sorted(client_timeline if source == "client" else server_timeline)
        ],
    }


# ----------------------------------------------------------------------------------------
# pgbench on the same cluster


def run_pgbench(url: str, console: Console, seconds: int = 20, scale: int = 10) -> dict[str, Any]:
    """``pgbench -i -s scale`` then ``-c 8 -j 2 -T seconds`` in a scratch database."""
    dbname = f"allocator_bench_pgbench_{os.getpid()}"
    base, env = pgbench_base(url)
    admin = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{dbname}" with (force)')
        conn.execute(f'create database "{dbname}"')
    try:
        console.print(f"[bold]pgbench[/bold] -i -s {scale} into {dbname}")
        init = subprocess.run(
            [*base, "-i", "-q", "-s", str(scale), dbname],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if init.returncode != 0:
            raise RuntimeError(f"pgbench -i failed: {init.stderr.strip()}")
        console.print(f"[bold]pgbench[/bold] -c 8 -j 2 -T {seconds}")
        run = subprocess.run(
            [*base, "-c", "8", "-j", "2", "-T", str(seconds), dbname],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if run.returncode != 0:
            raise RuntimeError(f"pgbench failed: {run.stderr.strip()}")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{dbname}" with (force)')
    return parse_pgbench(run.stdout) | {
        "command": f"pgbench -c 8 -j 2 -T {seconds} (after pgbench -i -s {scale})",
        "scale": scale,
        "seconds": seconds,
    }


def parse_pgbench(output: str) -> dict[str, Any]:
    """tps (without initial connection time), average latency and transactions from pgbench."""
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
    latency = re.search(r"latency average = ([\d.]+) ms", output)
    done = re.search(r"number of transactions actually processed: (\d+)", output)
    return {
        "tps": float(tps.group(1)) if tps else None,
        "latency_avg_ms": float(latency.group(1)) if latency else None,
        "transactions": int(done.group(1)) if done else None,
    }


# ----------------------------------------------------------------------------------------
# Targets, machine, output


def targets(
    results: dict[str, dict[str, Any]], pgbench: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Each target with its measured figure and whether it is met (None: not measured)."""
    out: list[dict[str, Any]] = []

    def add(name: str, measured: float | None, limit: float, upper: bool = True) -> None:
        met = None if measured is None else (measured <= limit if upper else measured >= limit)
        out.append({"target": name, "measured": measured, "limit": limit, "met": met})

    if "burst" in results:
        add(
            "burst P95 created->confirmed (ms) <= 1000",
            results["burst"]["latency_ms"]["p95"],
            TARGET_BURST_P95_MS,
        )
    if "steady" in results:
        add(
            "steady P95 created->confirmed (ms) <= 50",
            results["steady"]["latency_ms"]["p95"],
            TARGET_STEADY_P95_MS,
        )
    for name, r in results.items():
        add(f"{name} lock wait P95 (ms) <= 5", r["lock_wait_ms"]["p95"], TARGET_WAIT_P95_MS)
        add(f"{name} lease wait P95 (ms) <= 5", r["lease_wait_ms"]["p95"], TARGET_WAIT_P95_MS)
        add(f"{name} duplicate processing = 0", r["duplicate_processing"], 0)
        add(f"{name} overlapping allocations = 0", r["overlapping_allocations"], 0)
    burst = results.get("burst")
    if burst and pgbench and pgbench.get("tps") and burst["confirmed_per_s"] is not None:
        add(
            "burst confirmed/s / pgbench tps >= 0.5",
            round(burst["confirmed_per_s"] / pgbench["tps"], 4),
            TARGET_PGBENCH_SHARE,
            upper=False,
        )
    for script, share in (("async", TARGET_ASYNC_SHARE), ("instant", TARGET_PGBENCH_SHARE)):
        rpc = (pgbench or {}).get("rpc", {}).get(script)
        if rpc and pgbench and pgbench.get("tps"):
            add(
                f"{script} script confirmed/s / TPC-B tps >= {share}",
                round(rpc["confirmed_per_s"] / pgbench["tps"], 4),
                share,
                upper=False,
            )
    return out


def machine_info(url: str) -> dict[str, Any]:
    """Where the figures come from: host, CPU, memory, load, server settings."""
    cpu = "unknown"
    mem_kb = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    with _connect(url) as conn:
        settings = dict(conn.execute(SQL["server_settings"]).fetchall())
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1) if mem_kb else None,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "server": settings,
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return str(value)


def print_results(
    console: Console,
    results: dict[str, dict[str, Any]],
    pgbench: dict[str, Any] | None,
    goals: list[dict[str, Any]],
) -> None:
    """The figures as rich tables: one column per scenario, then pgbench and the targets."""
    grid = Table(title="allocator bench pipeline")
    grid.add_column("figure")
    for name in results:
        grid.add_column(name, justify="right")
    rows: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("bookings", lambda r: r["bookings"]),
        ("confirmed", lambda r: r["confirmed"]),
        ("manual review", lambda r: r["manual_review"]),
        ("failed", lambda r: r["failed"]),
        ("unsettled", lambda r: r["unsettled"]),
        ("create errors", lambda r: r["create_errors"]),
        ("duplicate processing", lambda r: r["duplicate_processing"]),
        ("overlapping allocations", lambda r: r["overlapping_allocations"]),
        ("arrival rate (/s)", lambda r: r["rate_per_s"]),
        ("created->confirmed measured by", lambda r: r["latency_source"]),
        ("created->confirmed P50 (ms)", lambda r: r["latency_ms"]["p50"]),
        ("created->confirmed P95 (ms)", lambda r: r["latency_ms"]["p95"]),
        ("created->confirmed P99 (ms)", lambda r: r["latency_ms"]["p99"]),
        ("created->confirmed P95 (ms, server)", lambda r: r["server_latency_ms"]["p95"]),
        ("pipeline_report-style P95 (ms)", lambda r: r["report_latency_ms"]["p95"]),
        ("created->settled P95 (ms)", lambda r: r["settle_latency_ms"]["p95"]),
        ("queue wait P50 / P95 (ms)", lambda r: _pair(r["breakdown_ms"]["queue_wait"])),
        ("processing P50 / P95 (ms)", lambda r: _pair(r["breakdown_ms"]["processing"])),
        ("commit+seen P50 / P95 (ms)", lambda r: _pair(r["breakdown_ms"]["commit_and_seen"])),
        ("create_booking call P50 / P95 (ms)", lambda r: _pair(r["breakdown_ms"]["create_call"])),
        ("lock wait P95 (ms)", lambda r: r["lock_wait_ms"]["p95"]),
        ("lease wait P95 (ms)", lambda r: r["lease_wait_ms"]["p95"]),
        ("attempts", lambda r: sum(r["attempt_results"].values())),
        ("confirmed / s", lambda r: r["confirmed_per_s"]),
        ("creates / s", lambda r: r["create_per_s"]),
        ("elapsed (s)", lambda r: r["elapsed_s"]),
        ("worker peak RSS (MB)", lambda r: ", ".join(str(m) for m in r["worker_peak_rss_mb"])),
    ]
    for label, get in rows:
        grid.add_row(label, *(_fmt(get(r)) for r in results.values()))
    console.print(grid)
    for name, r in results.items():
        top = r["wait_profile"]["top"][:6]
        if top:
            console.print(
                f"[bold]{name}[/bold] wait profile: "
                + "; ".join(f"{t['who']} {t['what']} {t['wait']} {t['share']:.0%}" for t in top)
            )
    if pgbench:
        burst = results.get("burst")
        ratio = (
            burst["confirmed_per_s"] / pgbench["tps"]
            if burst and burst["confirmed_per_s"] and pgbench.get("tps")
            else None
        )
        console.print(
            f"[bold]pgbench[/bold] tps {_fmt(pgbench.get('tps'))} "
            f"(latency avg {_fmt(pgbench.get('latency_avg_ms'))} ms); "
            f"confirmed/s / pgbench tps = {_fmt(ratio)}"
        )
        for script, figures in pgbench.get("rpc", {}).items():
            share = figures["confirmed_per_s"] / pgbench["tps"] if pgbench.get("tps") else None
            console.print(
                f"[bold]pgbench {script} script[/bold] {_fmt(figures.get('tps'))} scripts/s, "
                f"{_fmt(figures['confirmed_per_s'])} confirmed/s "
                f"(latency avg {_fmt(figures.get('latency_avg_ms'))} ms); "
                f"confirmed/s / TPC-B tps = {_fmt(share)}"
            )
    verdicts = Table(title="targets")
    verdicts.add_column("target")
    verdicts.add_column("measured", justify="right")
    verdicts.add_column("met")
    for goal in goals:
        met = {True: "[green]met[/green]", False: "[red]not met[/red]", None: "-"}[goal["met"]]
        verdicts.add_row(goal["target"], _fmt(goal["measured"]), met)
    console.print(verdicts)


def _pair(s: dict[str, Any]) -> str:
    return f"{_fmt(s['p50'])} / {_fmt(s['p95'])}"


def write_png(path: Path, results: dict[str, dict[str, Any]]) -> None:
    """Per scenario: a histogram of created->confirmed, and the same against creation time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(results),
        2,
        figsize=(13, 3.4 * len(results)),
        squeeze=False,
        gridspec_kw={"width_ratios": [3, 2]},
    )
    for row, (name, r) in zip(axes, results.items(), strict=True):
        ax, over_time = row[0], row[1]
        timeline = r["latency_timeline"]
        if timeline:
            over_time.scatter([t for t, _ in timeline], [ms for _, ms in timeline], s=4)
        over_time.set_title(f"{name}: created->confirmed by creation time")
        over_time.set_xlabel("s since first booking created")
        over_time.set_ylabel("ms")
        confirmed = r["latency_samples_ms"]
        if confirmed:
            ax.hist(
                confirmed,
                bins=50,
                color="tab:blue",
                alpha=0.8,
                label=f"created->confirmed (n={len(confirmed)})",
            )
            for q, style in (("p50", ":"), ("p95", "--"), ("p99", "-.")):
                v = r["latency_ms"][q]
                if v is not None:
                    ax.axvline(
                        v,
                        color="black",
                        linestyle=style,
                        linewidth=1,
                        label=f"{q.upper()} {v:,.0f} ms",
                    )
        if name == "contention" and r["settle_samples_ms"]:
            ax.hist(
                r["settle_samples_ms"],
                bins=50,
                color="tab:orange",
                alpha=0.5,
                label=f"created->settled (n={len(r['settle_samples_ms'])})",
            )
        ax.set_title(f"{name}: {r['bookings']} bookings, {r['confirmed']} confirmed")
        ax.set_xlabel("ms")
        ax.set_ylabel("bookings")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------------------
# Entry point


@dataclass
class Settings:
    """A run's settings, as the command line gives them (bench/cli.py: ``pipeline``), with the
    sizes that ``--quick`` changes already resolved."""

    scenario: str = "all"
    bookings: int = 500
    workers: int = 2
    rate: float | None = None
    duration: float = 20.0
    contention_bookings: int = 200
    contention_tables: int = 4
    pgbench: bool = True
    pgbench_seconds: int = 20
    json: bool = False
    png: bool = False
    out: Path | None = None
    quick: bool = False
    keep: bool = False
    seed: int = 2026


def run(args: Settings, argv: list[str]) -> int:
    """Run the benchmark (``argv``: the command line, recorded in the JSON); 0 when every
    booking settled with no duplicate processing, no overlapping allocation and clean worker
    exits (the performance targets only report)."""
    console = Console()
    url = database_url()
    with _connect(url) as conn:
        if not _scalar(conn, SQL["schema_ready"]):
            console.print(
                "[red]error[/red]: the database is not migrated; run `allocator migrate up`"
            )
            return 2
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    wanted = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    console.print(
        f"[bold]database[/bold] {url}  [bold]run[/bold] {run_id}  "
        f"[bold]workers[/bold] {args.workers} x --concurrency 2"
    )
    machine = machine_info(url)
    results: dict[str, dict[str, Any]] = {}
    created_ids: list[int] = []
    try:
        for name in wanted:
            scenario = build_scenario(name, args, results)
            console.print(
                f"[bold]{name}[/bold]: {scenario.bookings} bookings on {scenario.restaurants} "
                f"restaurant(s)" + (f" at {scenario.rate:g}/s" if scenario.rate else "")
            )
            figures = run_scenario(url, scenario, args.workers, run_id, args.seed, console)
            created_ids += figures["restaurant_ids"]
            results[name] = figures
    finally:
        if not args.keep and created_ids:
            delete_restaurants(url, created_ids)
    pgbench = None
    if args.pgbench:
        pgbench = run_pgbench(url, console, args.pgbench_seconds)
        pgbench["rpc"] = run_rpc_scripts(url, console, args.pgbench_seconds)
    goals = targets(results, pgbench)
    print_results(console, results, pgbench, goals)

    out = args.out or project_root() / "bench" / "results"
    stem = f"pipeline-{args.scenario}-{run_id}"
    if args.json:
        burst = results.get("burst")
        document = {
            "run": run_id,
            "argv": argv,
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "machine": machine,
            "scenarios": results,
            "pgbench": pgbench,
            "confirmed_per_s_over_pgbench_tps": (
                round(burst["confirmed_per_s"] / pgbench["tps"], 4)
                if burst and pgbench and burst["confirmed_per_s"] and pgbench.get("tps")
                else None
            ),
            "targets": goals,
        }
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{stem}.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
        console.print(f"[bold]wrote[/bold] {out / f'{stem}.json'}")
    if args.png:
        write_png(out / f"{stem}.png", results)
        console.print(f"[bold]wrote[/bold] {out / f'{stem}.png'}")

    broken = any(
        r["duplicate_processing"]
        or r["overlapping_allocations"]
        or r["unsettled"]
        or any(r["worker_exit_codes"])
        or r["create_errors"]
        for r in results.values()
    )
    return 1 if broken else 0


def build_scenario(name: str, args: Settings, done: dict[str, dict[str, Any]]) -> Scenario:
    """The scenario ``name`` sized from the command line (steady's rate from the burst)."""
    if name == "burst":
        return Scenario(
            name, sample_layout(), math.ceil(args.bookings / BOOKINGS_PER_RESTAURANT), args.bookings
        )
    if name == "steady":
        rate = args.rate
        if rate is None:
            burst_rate = done.get("burst", {}).get("confirmed_per_s")
            rate = round(burst_rate / 2, 1) if burst_rate else (5.0 if args.quick else 20.0)
        count = max(1, round(rate * args.duration))
        return Scenario(
            name,
            sample_layout(),
            math.ceil(count / BOOKINGS_PER_RESTAURANT),
            count,
            rate=rate,
            timeout=args.duration + 120,
        )
    return Scenario(
        name, contention_layout(args.contention_tables), 1, args.contention_bookings, timeout=180
    )
