"""`allocator bench quality --quick` on the test database: the JSON holds every figure, the
methods are ordered as they must be, and the chart is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from control.bench.quality import main


def test_quick_quality_run(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    out_json = tmp_path / "results" / "quality.json"
    out_png = tmp_path / "results" / "quality.png"

    code = main(["--quick", "--instances", "2", "--json", str(out_json), "--png", str(out_png)])

    report = json.loads(out_json.read_text())
    assert report["checks"] == []
    assert code == 0
    assert {
        "params",
        "machine",
        "instances",
        "aggregates",
        "large",
        "targets",
        "elapsed_s",
    } <= report.keys()
    assert {"nproc", "python", "scipy"} <= report["machine"].keys()
    assert len(report["instances"]) == 2
    for row in report["instances"]:
        for method in ("legacy", "engine", "optimize_day", "optimum"):
            assert {"parties", "covers", "peak_covers"} <= row[method].keys()
        # optimize_day never unseats a confirmed booking; the hindsight optimum bounds it.
        assert row["optimum"]["covers"] >= row["optimize_day"]["covers"] >= row["engine"]["covers"]
        assert row["optimize_day_run"]["covers_before"] == row["engine"]["covers"]
        assert row["demand"]["covers"] >= row["optimum"]["covers"] > 0
        assert 0 < row["ratio_optimize_day_optimum"] <= 1
    ratio = report["aggregates"]["ratio_optimize_day_optimum"]
    assert {"mean", "min", "p5", "below_97", "share_below_97"} <= ratio.keys()
    assert "engine_gain_over_legacy_pct" in report["aggregates"]["peak"]
    assert report["large"]["solve_ms_median"] > 0
    assert out_png.stat().st_size > 0
