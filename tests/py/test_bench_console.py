"""`python -m bench console` at a tiny scale: it builds its world in a scratch database,
measures the console's pages and a confirmation seen live in Chromium, prints plausible
figures as JSON and drops its database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from tests.py.browser import require_chromium

ROOT = Path(__file__).resolve().parents[2]
ARGS = [
    "--restaurants",
    "3",
    "--bookings-per-restaurant",
    "10",
    "--requests",
    "5",
    "--live",
    "2",
    "--json",
]


def test_a_tiny_console_bench_reports_its_figures(db_url: str) -> None:
    require_chromium()
    result = subprocess.run(
        [sys.executable, "-m", "bench", "console", *ARGS],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["argv"] == ARGS

    world = report["world"]
    assert world["restaurants"] == 3
    assert world["bookings"] == world["expected_bookings"] == 30
    assert sum(world["states"].values()) == 30
    assert world["states"]["confirmed"] > 0
    assert world["states"]["manual_review"] == 3  # one in each restaurant
    assert world["members"] == {"bench-all": 3, "bench-one": 1}

    for who in ("all", "one"):
        for page in ("board", "board_cards", "review"):
            figures = report["pages"][who][page]
            assert figures["errors"] == 0
            assert figures["bytes"] > 0
            for clock in ("server_ms", "round_trip_ms"):
                s = figures[clock]
                assert s["n"] == 5
                assert 0 < s["p50"] <= s["p95"] <= s["p99"] <= s["max"] < 10_000
            # Each request's round trip includes its server time, so every quantile does too.
            for q in ("p50", "p95", "max"):
                assert figures["round_trip_ms"][q] >= figures["server_ms"][q]
        sql = report["sql"][who]
        assert sql["board"]["rows"] == (30 if who == "all" else 10)
        assert sql["review_queue"]["rows"] == (3 if who == "all" else 1)
        assert sql["board"]["ms"]["p50"] > 0
        assert sql["watermark"]["rows"] == 1 and sql["watermark"]["ms"]["n"] == 5

    live = report["live"]
    assert live["bookings"] == live["seen"] == 2 and live["missed"] == []
    assert len(live["samples_ms"]) == 2
    assert all(0 < v < 10_000 for v in live["samples_ms"])
    assert live["visible_ms"]["n"] == live["polled_ms"]["n"] == 2
    assert 0 < live["told_ms"]["p50"] <= live["visible_ms"]["max"]

    goals = report["targets"]
    assert len(goals) == 7
    assert all(g["measured"] is not None and g["met"] in (True, False) for g in goals)

    # The scratch database is gone.
    assert world["database"].startswith("allocator_bench_console_")
    with psycopg.connect(make_conninfo(db_url, dbname="postgres")) as conn:
        left = conn.execute(
            "select 1 from pg_catalog.pg_database where datname = %s", (world["database"],)
        ).fetchone()
    assert left is None
