"""The simulated evening runs through the real RPCs and leaves every invariant holding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]


def test_a_simulated_evening_reports_its_figures(db_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "bench/evening.py", "--evenings", "1", "--bookings", "40", "--json"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    runs = {r["run"]: r for r in report["runs"]}
    assert set(runs) == {"as_it_happens", "ignoring_early_finishes_and_no_shows"}
    for run in runs.values():
        assert run["violations"] == 0
        assert run["covers"] > 0 and run["parties"] > 0
        assert 0 < run["utilisation"] <= 1
    # Nothing is left behind: each evening was rolled back.
    with psycopg.connect(db_url) as conn:
        left = conn.execute(
            "select count(*) from allocator.restaurants where name like 'bench evening %'"
        ).fetchone()
    assert left == (0,)
