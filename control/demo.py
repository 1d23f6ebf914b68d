"""The main job: guests of a busy week of evenings search and book at once, a tenth call
instead and the workers seat their bookings from the queue, a tenth of the guests change their
booking afterwards, and the demo watches until every booking is settled."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from control.display import cell, literal
from control.errors import OutsideService, Unavailable
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


# The demo restaurant's service: dinner every day, 17:00 to a last seating at 22:00 local,
# at most 24 covers starting in any 15-minute slot.
DINNER = ("dinner", [1, 2, 3, 4, 5, 6, 7], "17:00", "22:00", 24)
# A guest whose time is taken takes the nearest time offered within this many minutes.
ACCEPT_MINUTES = 30
# The share of requests taken by phone: staff enter them with create_booking, and the workers
# seat them from the queue.
PHONE_SHARE = 0.1
# The share of booked guests who change their booking afterwards.
CHANGE_SHARE = 0.1


@dataclass
class Guest:
    """One request of the demo and what became of it."""

    number: int
    party: int
    asked: datetime
    phone: bool = False
    booking_id: int | None = None
    version: int | None = None
    start: datetime | None = None
    answer_ms: list[float] = field(default_factory=list)


def nearest(asked: datetime, offered: list[datetime]) -> datetime | None:
    """The offered time nearest to the one asked (the earlier on a tie), if within
    ACCEPT_MINUTES."""
    near = [t for t in offered if abs((t - asked).total_seconds()) <= ACCEPT_MINUTES * 60]
    return min(near, key=lambda t: (abs((t - asked).total_seconds()), t)) if near else None


def book_guest(conn: psycopg.Connection[Any], restaurant_id: int, guest: Guest) -> None:
    """What a guest-facing application does: search the times near the one asked, book the
    asked time or the nearest offered one, and when another guest took it meanwhile, take the
    nearest of the alternatives the refusal names. Sets the guest's booking, if any."""
    window = timedelta(minutes=ACCEPT_MINUTES)
    started = time.perf_counter()
    offered = [
        row[0]
        for row in conn.execute(
            query("find_slots"),
            (restaurant_id, guest.party, guest.asked - window, guest.asked + window),
        )
    ]
    guest.answer_ms.append((time.perf_counter() - started) * 1000)
    choice = nearest(guest.asked, offered)
    if guest.phone:
        # Staff take the call: the time the search offers goes on the queue for the workers.
        if choice is not None:
            row = conn.execute(
                query("create_booking"),
                (
                    restaurant_id,
                    guest.party,
                    choice,
                    None,
                    f"phone-{time.time_ns()}-{guest.number}",
                    None,
                ),
            ).fetchone()
            assert row is not None
            guest.booking_id = int(row[0]["booking_id"])
            guest.start = choice
        return
    for attempt in range(2):
        if choice is None:
            return
        started = time.perf_counter()
        key = f"demo-{time.time_ns()}-{guest.number}"
        try:
            row = conn.execute(query("book"), (restaurant_id, guest.party, choice, key)).fetchone()
        except psycopg.Error as refused:
            if refused.sqlstate not in (OutsideService.sqlstate, Unavailable.sqlstate):
                raise
            guest.answer_ms.append((time.perf_counter() - started) * 1000)
            detail = json.loads(refused.diag.message_detail or "{}")
            alternatives = [datetime.fromisoformat(t) for t in detail.get("alternatives", [])]
            choice = nearest(guest.asked, alternatives) if attempt == 0 else None
            continue
        guest.answer_ms.append((time.perf_counter() - started) * 1000)
        assert row is not None
        booked = row[0]
        guest.booking_id = int(booked["booking_id"])
        guest.version = int(booked["version"])
        guest.start = choice
        return


def book_guests(url: str, restaurant_id: int, guests: list[Guest]) -> None:
    """Every guest searches and books, from 8 connections at once."""

    def serve(chunk: list[Guest]) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            for guest in chunk:
                book_guest(conn, restaurant_id, guest)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(serve, [guests[i::8] for i in range(8)]))


def change_bookings(url: str, guests: list[Guest], seed: int = 2026) -> dict[str, int]:
    """A seeded tenth of the guests booked at once change their booking: half bring one more
    guest, half come 30 minutes later. ``modify_booking`` decides at once: the same table, or
    another, or a refusal that leaves the booking as it was. Returns the counts."""
    rng = random.Random(seed)
    booked = [g for g in guests if g.booking_id is not None and not g.phone]
    changed = rng.sample(booked, round(len(booked) * CHANGE_SHARE))
    counts = {"changed": len(changed), "kept_table": 0, "moved": 0, "refused": 0}
    with psycopg.connect(url, autocommit=True) as conn:
        for i, guest in enumerate(changed):
            assert guest.start is not None
            more, later = (
                (min(guest.party + 1, 12), None)
                if i % 2 == 0
                else (None, guest.start + timedelta(minutes=30))
            )
            # The guest opens the booking to change it: its version now, which moves on when
            # its tables are changed to seat other guests (flexible tables).
            current = conn.execute(query("booking"), (guest.booking_id,)).fetchone()
            assert current is not None
            guest.version = int(current[0]["version"])
            try:
                row = conn.execute(
                    query("modify_booking"), (guest.booking_id, guest.version, later, more)
                ).fetchone()
            except psycopg.Error as refused:
                if refused.sqlstate not in (OutsideService.sqlstate, Unavailable.sqlstate):
                    raise
                counts["refused"] += 1
                continue
            assert row is not None
            counts["kept_table" if row[0]["kept_tables"] else "moved"] += 1
    return counts


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile, or None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


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
    """Run the demo and print its summary; returns the report."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select now()").fetchone()
        name, days, opens, last_seating, pacing = DINNER
        conn.execute(query("set_service"), (restaurant_id, name, days, opens, last_seating, pacing))
    assert row is not None
    since = row[0]
    phone = random.Random(7)
    guests = [
        Guest(i, party, start, phone.random() < PHONE_SHARE)
        for i, (party, start) in enumerate(booking_requests(count, timezone))
    ]
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
        book_guests(url, restaurant_id, guests)
        console.print(
            f"[bold]guests[/bold] {len(guests)} searched and booked over the next five evenings "
            f"in {time.monotonic() - started:.1f} s"
        )
        changes = change_bookings(url, guests)
        console.print(f"[bold]changes[/bold] {changes['changed']} guests changed their booking")
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
            task = progress.add_task("settle")
            while True:
                done_row = conn.execute(query("open_bookings"), (restaurant_id, since)).fetchone()
                done, total = (int(done_row[0]), int(done_row[1])) if done_row else (0, 0)
                progress.update(task, completed=done, total=total)
                if done >= total or time.monotonic() - started > timeout:
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
    report["guests"] = guest_report(guests, changes, report["manual_review"])
    print_guests(console, report["guests"])

    summary = Table(title="pipeline summary (every booking made)")
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


def guest_report(
    guests: list[Guest], changes: dict[str, int], manual_review: int
) -> dict[str, Any]:
    """What the guests got: their time, another near it, a queued phone booking, or nothing;
    how fast the answers came; what became of the changes."""
    app = [g for g in guests if not g.phone]
    answers = [ms for g in app for ms in g.answer_ms]
    return {
        "requests": len(guests),
        "at_asked_time": sum(1 for g in app if g.start is not None and g.start == g.asked),
        "at_other_time": sum(1 for g in app if g.start is not None and g.start != g.asked),
        "by_phone": sum(1 for g in guests if g.phone and g.start is not None),
        "turned_away": sum(1 for g in guests if g.start is None),
        "booked": sum(1 for g in guests if g.start is not None),
        "answer_p50_ms": percentile(answers, 0.5),
        "answer_p95_ms": percentile(answers, 0.95),
        **changes,
        "manual_review_share": round(manual_review / len(guests), 4) if guests else 0.0,
    }


def print_guests(console: Console, figures: dict[str, Any]) -> None:
    """The guests' table: what the requests got."""
    table = Table(title=f"guests (a guest takes the nearest time within {ACCEPT_MINUTES} minutes)")
    table.add_column("what")
    table.add_column("value", justify="right")
    requests = figures["requests"] or 1

    def share(n: int) -> str:
        return f"{n} ({100 * n / requests:.1f}%)"

    for label, value in [
        ("requests", figures["requests"]),
        ("confirmed at once, at the time asked", share(figures["at_asked_time"])),
        ("confirmed at once, at another time offered", share(figures["at_other_time"])),
        ("taken by phone, seated by the workers", share(figures["by_phone"])),
        ("refused (nothing within the window)", share(figures["turned_away"])),
        ("search and book answers P50 (ms)", f"{figures['answer_p50_ms'] or 0:.1f}"),
        ("search and book answers P95 (ms)", f"{figures['answer_p95_ms'] or 0:.1f}"),
        ("changed afterwards", figures["changed"]),
        ("changes on the same table", figures["kept_table"]),
        ("changes moved to another table", figures["moved"]),
        ("changes refused (booking kept as it was)", figures["refused"]),
        ("manual review, share of requests", f"{100 * figures['manual_review_share']:.1f}%"),
    ]:
        table.add_row(label, cell(value))
    console.print(table)


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
