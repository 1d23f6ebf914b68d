"""The main job: a busy week of evenings pushed through the whole pipeline by two worker
processes, watched until every booking is settled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from control.display import cell, literal
from control.queries import query

PARTY_SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 10, 12]
PARTY_WEIGHTS = [8, 46, 9, 17, 5, 6, 2, 3, 2, 2]


def booking_requests(count: int, timezone: str, seed: int = 2026) -> list[tuple[int, datetime]]:
    """Seeded party sizes and start times over the next five evenings (17:00-22:00 local)."""
    rng = random.Random(seed)
    tz = ZoneInfo(timezone)
    today = datetime.now(tz).date()
    requests = []
    for _ in range(count):
        day = today + timedelta(days=1 + rng.randrange(5))
        minute = 17 * 60 + rng.randrange(0, 5 * 60 + 1, 15)
        start = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz)
        requests.append((rng.choices(PARTY_SIZES, PARTY_WEIGHTS)[0], start))
    return requests


def start_workers(url: str, count: int, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` worker processes (``allocator worker``) logging to log_dir."""
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for i in range(count):
        log_file = (log_dir / f"worker-{i}.log").open("ab")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "control.cli",
                    "worker",
                    "--concurrency",
                    "2",
                    "--name",
                    f"demo-{i}",
                    "--notifications",
                    str(log_dir / "notifications.jsonl"),
                ],
                env={**os.environ, "DATABASE_URL": url},
                stdout=log_file,
                stderr=log_file,
            )
        )
    return procs


def wait_for_workers(
    url: str, procs: list[subprocess.Popen[bytes]], timeout: float = 60.0
) -> list[str]:
    """Wait until every worker holds the lease of its name (``worker:demo-<n>``, owner
    ``demo-<n>@host:pid:...``): by then it has installed its SIGTERM handler, so stopping it
    asks it to finish cleanly, while a worker still starting up would die of the signal.
    Returns the names of the workers that exited or were not ready within ``timeout`` s."""
    waiting = {f"worker:demo-{i}": proc for i, proc in enumerate(procs)}
    failed: list[str] = []
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while waiting and time.monotonic() < deadline:
            for name, owner, _expires, live in conn.execute(query("status_leases")).fetchall():
                proc = waiting.get(name)
                if proc is not None and live and f":{proc.pid}:" in str(owner):
                    del waiting[name]
            for name, proc in list(waiting.items()):
                if proc.poll() is not None:
                    failed.append(name)
                    del waiting[name]
            if waiting:
                time.sleep(0.1)
    return sorted(n.removeprefix("worker:") for n in [*failed, *waiting])


def stop_workers(procs: list[subprocess.Popen[bytes]], timeout: float = 60.0) -> list[int]:
    """SIGTERM each worker and wait for it (a worker finishes its in-flight bookings first);
    one still running after ``timeout`` s is killed. Returns their exit codes."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=max(0.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
    return codes


def push_bookings(url: str, restaurant_id: int, requests: list[tuple[int, datetime]]) -> int:
    """Create the bookings from 8 connections at once; returns how many were created."""

    def create(chunk: list[tuple[int, int, datetime]]) -> int:
        with psycopg.connect(url, autocommit=True) as conn:
            for i, party, start in chunk:
                conn.execute(
                    query("create_booking"),
                    (restaurant_id, party, start, None, f"demo-{time.time_ns()}-{i}", None),
                )
        return len(chunk)

    numbered = [(i, party, start) for i, (party, start) in enumerate(requests)]
    chunks = [numbered[i::8] for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(create, chunks))


def run_demo(
    url: str,
    restaurant_id: int,
    timezone: str,
    console: Console,
    log_dir: Path,
    count: int = 500,
    workers: int = 2,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Run the pipeline demo and print its summary; returns the report."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select now()").fetchone()
    assert row is not None
    since = row[0]
    procs = start_workers(url, workers, log_dir)
    try:
        not_ready = wait_for_workers(url, procs)
        console.print(
            f"[bold]workers[/bold] {workers - len(not_ready)} of {workers} processes ready "
            f"(logs in {literal(log_dir)})"
        )
        if not_ready:
            console.print(f"[red]not ready[/red]: {literal(', '.join(not_ready))}")
        started = time.monotonic()
        created = push_bookings(url, restaurant_id, booking_requests(count, timezone))
        console.print(
            f"[bold]pushed[/bold] {created} bookings over the next five evenings "
            f"in {time.monotonic() - started:.1f} s"
        )
        with (
            psycopg.connect(url, autocommit=True) as conn,
            Progress(
                TextColumn("settling bookings"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress,
        ):
            task = progress.add_task("settle", total=created)
            while True:
                done_row = conn.execute(query("open_bookings"), (restaurant_id, since)).fetchone()
                done = int(done_row[0]) if done_row else 0
                progress.update(task, completed=done)
                if done >= created or time.monotonic() - started > timeout:
                    break
                time.sleep(0.2)
        elapsed = time.monotonic() - started
    finally:
        codes = stop_workers(procs)
    with psycopg.connect(url, autocommit=True) as conn:
        report_row = conn.execute(query("pipeline_report"), (restaurant_id, since)).fetchone()
    assert report_row is not None
    report: dict[str, Any] = dict(report_row[0])
    report["elapsed_s"] = round(elapsed, 1)
    report["worker_exit_codes"] = codes

    summary = Table(title="pipeline summary")
    summary.add_column("what")
    summary.add_column("value", justify="right")
    for label, key in [
        ("bookings", "bookings"),
        ("confirmed", "confirmed"),
        ("manual review", "manual_review"),
        ("created -> confirmed P50 (ms)", "latency_p50_ms"),
        ("created -> confirmed P95 (ms)", "latency_p95_ms"),
        ("assignment attempts", "attempts"),
        ("duplicate processing", "duplicate_processing"),
        ("overlapping allocations", "overlapping_allocations"),
        ("elapsed (s)", "elapsed_s"),
        ("worker exit codes", "worker_exit_codes"),
    ]:
        summary.add_row(label, cell(report.get(key)))
    console.print(summary)
    report["optimizer"] = replan_days(url, restaurant_id, since, console)
    return report


def replan_days(url: str, restaurant_id: int, since: datetime, console: Console) -> dict[str, Any]:
    """Run the nightly optimizer's rule (``replan_day``) on each day the demo booked, print
    what it changed, and check the invariants after it."""
    table = Table(title="nightly optimizer (replan_day on each evening; ms: solve time)")
    for column in ("day", "bookings", "covers", "seated", "moved", "status", "ms"):
        table.add_column(column, justify="right", no_wrap=True)
    seated = moved = 0
    with psycopg.connect(url, autocommit=True) as conn:
        days = [row[0] for row in conn.execute(query("demo_days"), (restaurant_id, since))]
        for day in days:
            row = conn.execute(query("replan_day"), (restaurant_id, day)).fetchone()
            assert row is not None
            run = row[0]
            seated += int(run["seated"])
            moved += int(run["moved"])
            after = run["covers_after"] if run["applied"] else run["covers_before"]
            table.add_row(
                day.isoformat(),
                cell(run["bookings"]),
                cell(f"{run['covers_before']} -> {after}"),
                cell(run["seated"]),
                cell(run["moved"]),
                cell(run["status"]),
                f"{float(run['solve_ms']):.0f}",
            )
        violations = conn.execute(query("violation_count"), (restaurant_id,)).fetchone()
    console.print(table)
    count = int(violations[0]) if violations else 0
    console.print(
        f"[bold]optimizer[/bold] seated {seated} bookings from manual review, moved {moved}; "
        f"invariant violations: {count}",
        soft_wrap=True,
    )
    return {"days": len(days), "seated": seated, "moved": moved, "violations": count}
