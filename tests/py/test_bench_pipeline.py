"""`python -m bench pipeline --quick`: a tiny burst through real workers produces figures,
and the pipeline's two invariants hold (no duplicate processing, no overlapping tables)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bench.cli import run
from bench.pipeline import parse_pgbench, percentile


def test_quick_burst_writes_figures(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    started = time.monotonic()
    args = ["--quick", "--scenario", "burst", "--no-pgbench", "--json", "--out", str(tmp_path)]
    code = run(["pipeline", *args])
    assert code == 0
    assert time.monotonic() - started < 60

    [path] = tmp_path.glob("pipeline-burst-*.json")
    document = json.loads(path.read_text())
    assert document["argv"] == args
    assert document["settings"] == {
        "scenario": "burst",
        "bookings": 20,
        "workers": 2,
        "rate": None,
        "duration": 3.0,
        "contention_bookings": 12,
        "contention_tables": 4,
        "pgbench": False,
        "pgbench_seconds": 20,
        "json": True,
        "png": False,
        "out": str(tmp_path),
        "quick": True,
        "keep": False,
        "seed": 2026,
    }
    burst = document["scenarios"]["burst"]
    assert burst["bookings"] == 20
    assert burst["confirmed"] > 0
    assert burst["confirmed"] + burst["manual_review"] + burst["failed"] == burst["bookings"]
    assert burst["duplicate_processing"] == 0
    assert burst["overlapping_allocations"] == 0
    for figure in ("latency_ms", "server_latency_ms", "report_latency_ms"):
        assert burst[figure]["p50"] is not None and burst[figure]["p50"] >= 0
        assert burst[figure]["p95"] >= burst[figure]["p50"]
        assert burst[figure]["p99"] >= burst[figure]["p95"]
    assert burst["lock_wait_ms"]["p95"] is not None
    assert burst["lease_wait_ms"]["n"] >= 1  # each worker's lease_acquire at start
    assert burst["confirmed_per_s"] > 0
    assert burst["worker_exit_codes"] == [0, 0]
    assert document["pgbench"] is None
    assert document["machine"]["server"]["server_version"]
    assert {t["target"] for t in document["targets"]} >= {"burst duplicate processing = 0"}


def test_percentile_matches_percentile_cont() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([float(v) for v in range(1, 101)], 0.95) == pytest.approx(95.05)


def test_parse_pgbench_output() -> None:
    output = """
number of transactions actually processed: 12345
latency average = 12.961 ms
initial connection time = 10.123 ms
tps = 617.245601 (without initial connection time)
"""
    assert parse_pgbench(output) == {
        "tps": 617.245601,
        "latency_avg_ms": 12.961,
        "transactions": 12345,
    }
