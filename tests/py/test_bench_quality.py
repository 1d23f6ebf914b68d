"""`python -m bench quality --quick` on the test database: the JSON holds every figure, the
methods are ordered as they must be, and the chart is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import run


def test_quick_quality_run(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    out_json = tmp_path / "results" / "quality.json"
    out_png = tmp_path / "results" / "quality.png"

    code = run(
        ["quality", "--quick", "--instances", "2", "--json", str(out_json), "--png", str(out_png)]
    )

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
        for method in (
            "legacy",
            "engine",
            "optimize_day",
            "committed_optimum",
            "pooled",
            "optimum",
            "fallback",
        ):
            assert {"parties", "covers", "peak_covers"} <= row[method].keys()
        covers = {
            m: row[m]["covers"] for m in row if isinstance(row[m], dict) and "covers" in row[m]
        }
        # optimize_day never unseats a confirmed booking; each optimum bounds its problem.
        assert covers["committed_optimum"] >= covers["optimize_day"] >= covers["engine"]
        assert covers["optimum"] >= max(covers["committed_optimum"], covers["pooled"])
        assert covers["optimum"] >= covers["fallback"] > 0
        assert row["optimize_day_run"]["covers_before"] == covers["engine"]
        # The pooled plan was applied in the database: its confirmed rows are the plan.
        assert row["pooled_run"]["covers_before"] == 0
        assert row["pooled_run"]["covers_after"] == covers["pooled"] > 0
        assert row["pooled_run"]["apply"] == "applied"
        # Every booking of the pooling restaurant was deferred by process_booking.
        assert row["pooled_run"]["outcomes"] == {"deferred": row["bookings"]}
        assert sum(row["engine_outcomes"].values()) == row["bookings"]
        assert row["demand"]["covers"] >= covers["optimum"]
        for ratio in ("ratio_pooled_optimum", "ratio_optimize_day_committed"):
            assert 0 < row[ratio] <= 1
    aggregates = report["aggregates"]
    for name in ("ratio_pooled_optimum", "ratio_optimize_day_committed", "ratio_fallback_optimum"):
        assert {"mean", "min", "p5", "below_97", "share_below_97"} <= aggregates[name].keys()
    assert {"engine_gain_over_legacy_pct", "optimum_gain_over_legacy_pct"} <= aggregates[
        "peak"
    ].keys()
    assert {"pooled_mean_ratio", "committed_share_below_97", "large_solve_ms"} <= report[
        "targets"
    ].keys()
    large = report["large"]
    assert 0 < large["pooled"]["covers_after"] <= large["optimum_covers"]
    assert (
        large["pooled"]["ratio_optimum"]
        == large["pooled"]["covers_after"] / large["optimum_covers"]
    )
    for scenario in ("after_engine", "pooled"):
        assert report["large"][scenario]["solve_ms_median"] > 0
        assert (
            report["large"][scenario]["call_ms_median"]
            >= report["large"][scenario]["solve_ms_median"]
        )
    assert out_png.stat().st_size > 0


def test_bad_strategy_weights_are_refused_before_any_run(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("COLUMNS", "200")
    out = ["--json", str(tmp_path / "q.json"), "--png", str(tmp_path / "q.png"), "--quick"]
    # Not an object of numbers: a usage error from the command line itself.
    assert run(["quality", "--strategy-weights", "[1]", *out]) == 2
    usage = capsys.readouterr()
    assert "Invalid value for '--strategy-weights'" in usage.err
    assert "a JSON object of numbers" in usage.err
    # An unknown strategy: the database's settings check refuses it, and nothing runs.
    assert run(["quality", "--strategy-weights", '{"bogus": 1}', *out]) == 2
    refused = capsys.readouterr()
    assert "--strategy-weights: " in refused.out and "Invalid value" not in refused.err
    assert not (tmp_path / "q.json").exists()
