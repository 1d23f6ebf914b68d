"""The allocator command line, run as a user runs it, against a scratch database."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import create_database, database_name_for, drop_database

ROOT = Path(__file__).resolve().parents[2]
ALLOCATOR = str(Path(sys.executable).with_name("allocator"))


@pytest.fixture
def scratch_url() -> Iterator[str]:
    name = database_name_for("cli")
    yield create_database(name)
    drop_database(name)


def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url, "COLUMNS": "200"}
    return subprocess.run(
        [ALLOCATOR, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def test_migrate_commands(scratch_url: str) -> None:
    assert run(scratch_url, "migrate", "current").stdout.strip() == ""
    up = run(scratch_url, "migrate", "up")
    assert up.returncode == 0, up.stderr
    assert "(head)" in run(scratch_url, "migrate", "current").stdout
    history = run(scratch_url, "migrate", "history").stdout
    assert "0001" in history and "Baseline" in history
    down = run(scratch_url, "migrate", "down")
    assert down.returncode == 0, down.stderr
    assert run(scratch_url, "migrate", "current").stdout.strip() == ""


def test_demo_prints_the_layout_and_can_run_again(scratch_url: str) -> None:
    for _ in range(2):
        demo = run(scratch_url, "demo", "--bookings", "60")
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "30 tables, 98 seats" in demo.stdout
        assert "M1+M2+M3" in demo.stdout
        assert "pipeline summary" in demo.stdout
        # Every guest got an answer at once: confirmed at a time, or refused.
        asked = int(re.search(r"requests\s*│\s*(\d+)", demo.stdout).group(1))  # type: ignore[union-attr]
        answers = [
            int(n)
            for n in re.findall(
                r"(?:at the time asked|at another time offered|seated by the workers|within the window\))\s*│\s*(\d+)",
                demo.stdout,
            )
        ]
        assert asked == 60 and len(answers) == 4 and sum(answers) == asked, demo.stdout
        assert answers[0] > 0, demo.stdout
        assert re.search(r"overlapping allocations\s*│\s*0\s", demo.stdout), demo.stdout
        assert re.search(r"duplicate processing\s*│\s*0\s", demo.stdout), demo.stdout
        assert re.search(r"worker exit codes\s*│\s*\[0, 0\]", demo.stdout), demo.stdout
        assert "nightly optimizer" in demo.stdout
        assert re.search(r"invariant\s+violations:\s+0\b", demo.stdout), demo.stdout
    with psycopg.connect(scratch_url) as conn:
        count = conn.execute(
            "select count(*) from allocator.restaurants where name = 'Trattoria Demo'"
        ).fetchone()
    assert count == (1,), "a second demo replaces the sample restaurant"


def test_bad_layout_is_a_clear_error(scratch_url: str, tmp_path: Path) -> None:
    assert run(scratch_url, "migrate", "up").returncode == 0
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"name": "Bad", "tables": [{"label": "A", "max_capacity": 2}], "adjacency": [["A", "Z"]]}'
    )
    result = run(scratch_url, "layout", "load", str(bad))
    assert result.returncode == 1
    assert "RA012" in result.stdout
    assert "does not name two different tables" in result.stdout
    with psycopg.connect(scratch_url) as conn:
        assert conn.execute("select count(*) from allocator.restaurants").fetchone() == (0,)


def test_db_url_honours_database_url(scratch_url: str) -> None:
    assert run(scratch_url, "db", "url").stdout.strip() == scratch_url


def test_booking_status_inspect_and_metrics(scratch_url: str) -> None:
    import socket
    import urllib.request

    assert run(scratch_url, "demo", "--bookings", "10").returncode == 0
    with psycopg.connect(scratch_url) as conn:
        (rid,) = conn.execute("select id from allocator.restaurants").fetchone()  # type: ignore[misc]
    bad = run(
        scratch_url,
        "booking",
        "create",
        "--restaurant",
        str(rid),
        "--party",
        "0",
        "--start",
        "2027-03-01T19:00:00+01:00",
    )
    assert bad.returncode == 1 and "RA001" in bad.stdout
    good = run(
        scratch_url,
        "booking",
        "create",
        "--restaurant",
        str(rid),
        "--party",
        "2",
        "--start",
        "2027-03-01T19:00:00+01:00",
        "--key",
        "cli-1",
    )
    assert good.returncode == 0, good.stdout + good.stderr
    booking_id = json.loads(good.stdout)["booking_id"]
    status = run(scratch_url, "status")
    assert (
        status.returncode == 0
        and "bookings per state" in status.stdout
        and "confirmed" in status.stdout
    )
    inspect = run(scratch_url, "inspect", str(booking_id))
    assert inspect.returncode == 0 and "created" in inspect.stdout
    assert run(scratch_url, "inspect", "987654321").returncode == 1

    # One shadow decision, made by a live worker named probe.
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        conn.execute("select allocator.update_settings(%s, '{\"flags\": {\"shadow\": true}}')", (rid,))
        conn.execute("select allocator.lease_acquire('worker:probe', 'probe-owner', 600)")
        shadowed = conn.execute(
            "select (allocator.create_booking(%s, 2, '2027-03-02T19:00:00+01:00') ->> 'booking_id')::bigint", (rid,)
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("select allocator.process_booking(%s, 'probe')", (shadowed,))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": scratch_url}
    server = subprocess.Popen(
        [ALLOCATOR, "metrics", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and "serving metrics" in server.stdout.readline()
        body = (
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert f'allocator_bookings{{restaurant="{rid}",state="confirmed"}}' in body
    assert "allocator_success_rate" in body
    assert f'allocator_shadow_decisions{{restaurant="{rid}"}} 1.0' in body
    assert 'allocator_worker_attempts_total{worker="probe"} 1.0' in body
    assert 'allocator_mail_notifications{status="in_doubt"} 0.0' in body


def test_malformed_dates_are_refused_before_the_database(scratch_url: str) -> None:
    for args in (
        ["optimize", "--restaurant", "1", "--date", "2026-13-01"],
        ["booking", "create", "--restaurant", "1", "--party", "2", "--start", "tomorrow"],
    ):
        result = run(scratch_url, *args)
        assert result.returncode == 2
        assert "does not match the formats" in result.stdout + result.stderr


def test_demo_waits_for_its_workers_before_stopping_them(scratch_url: str) -> None:
    # With no bookings there is nothing to wait for: the workers are stopped as soon as they
    # are ready. Stopped while still starting up, they would die of SIGTERM (exit -15).
    demo = run(scratch_url, "demo", "--bookings", "0")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "2 of 2 processes ready" in demo.stdout, demo.stdout
    assert re.search(r"worker exit codes\s*│\s*\[0, 0\]", demo.stdout), demo.stdout


def test_demo_reports_workers_that_do_not_start_or_stop(db_url: str) -> None:
    from control.demo import stop_workers, wait_for_workers

    python = [sys.executable, "-c"]
    exits = subprocess.Popen([*python, "pass"])
    stubborn = subprocess.Popen(
        [
            *python,
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print(flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    assert stubborn.stdout is not None and stubborn.stdout.readline()  # SIGTERM is ignored
    assert wait_for_workers(db_url, [exits, stubborn], timeout=2) == ["demo-0", "demo-1"]
    assert stop_workers([exits, stubborn], timeout=2) == [0, -signal.SIGKILL]


def test_shadow_reports_the_engine_beside_the_legacy_planner(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            """select allocator.import_layout('{"name": "Shadowed", "settings": {"flags": {"shadow": true}},
                 "zones": [{"name": "Hall"}, {"name": "Window"}],
                 "tables": [{"label": "S1", "zone": "Hall", "max_capacity": 2},
                            {"label": "S2", "zone": "Window", "max_capacity": 2}]}') ->> 'restaurant_id'"""
        ).fetchone()
        assert row is not None
        rid = int(row[0])
        for zone in ("Window", None):
            booking = conn.execute(
                "select (allocator.create_booking(%s, 2, now() + interval '1 day', p_preferred_zone => %s) ->> 'booking_id')::bigint",
                (rid, zone),
            ).fetchone()
            assert booking is not None
            conn.execute("select allocator.process_booking(%s, 'test')", (booking[0],))
    result = run(db_url, "shadow", "--json", "--days", "1")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    mine = [r for r in rows if r["restaurant_id"] == rid]
    # The window guest: the engine would pick the window table S2, the legacy planner seats
    # them at S1 (lowest id, zone ignored). The next guest: both take S2, the one left.
    assert mine == [
        {
            "restaurant_id": rid,
            "decisions": 2,
            "agreements": 1,
            "agreement_rate": "0.5000",
            "engine_seated": 2,
            "legacy_seated": 2,
            "engine_covers": 4,
            "legacy_covers": 4,
            "errors": 0,
        }
    ], result.stdout
    table = run(db_url, "shadow")
    assert table.returncode == 0 and "engine beside the legacy planner" in table.stdout


def test_floor_shows_each_table_and_who_is_next(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            """select allocator.import_layout('{"name": "Floor CLI", "timezone": "Europe/Rome",
                 "tables": [{"label": "F1", "max_capacity": 4}, {"label": "F2", "max_capacity": 4}]}') ->> 'restaurant_id'"""
        ).fetchone()
        assert row is not None
        rid = int(row[0])
        booking = conn.execute(
            "select (allocator.create_booking(%s, 4, '2027-03-01T19:00:00+01:00', 120) ->> 'booking_id')::bigint",
            (rid,),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("select allocator.process_booking(%s, 'test')", (booking,))
    during = run(db_url, "floor", "--restaurant", str(rid), "--at", "2027-03-01T19:30:00+01:00")
    assert during.returncode == 0, during.stdout + during.stderr
    line = next(line for line in during.stdout.splitlines() if "F1" in line)
    assert "booked" in line and str(booking) in line and "21:15" in line, during.stdout
    assert re.search(r"F2\s*│[^│]*│\s*free", during.stdout), during.stdout
    before = run(db_url, "floor", "--restaurant", str(rid), "--at", "2027-03-01T18:00:00+01:00")
    f1 = next(line for line in before.stdout.splitlines() if "F1" in line)
    assert "free" in f1 and "19:00" in f1, before.stdout
    assert run(db_url, "floor", "--restaurant", "987654321").returncode == 1
