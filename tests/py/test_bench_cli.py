"""The benchmarks' command line: `python -m bench <command> --help` and `allocator bench
<command> --help` list every option, bad options are usage errors, and without the source
checkout's `bench` package `allocator bench` says where the benchmarks run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import run

ROOT = Path(__file__).resolve().parents[2]
ALLOCATOR = str(Path(sys.executable).with_name("allocator"))

OPTIONS = {
    "pipeline": (
        "--scenario",
        "--bookings",
        "--workers",
        "--rate",
        "--duration",
        "--contention-bookings",
        "--contention-tables",
        "--pgbench",
        "--no-pgbench",
        "--pgbench-seconds",
        "--json",
        "--png",
        "--out",
        "--quick",
        "--keep",
        "--seed",
    ),
    "quality": (
        "--instances",
        "--seed",
        "--tables-large",
        "--bookings-large",
        "--json",
        "--png",
        "--time-limit-ms",
        "--quick",
        "--strategy-weights",
    ),
    "instant": (
        "--restaurants",
        "--days",
        "--warmup",
        "--model",
        "--sensitivity-every",
        "--quick",
        "--json",
        "--seed",
    ),
    "console": (
        "--restaurants",
        "--bookings-per-restaurant",
        "--requests",
        "--live",
        "--other-days",
        "--json",
        "--keep",
        "--seed",
    ),
}


def _run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "ALLOCATOR_HOME"}
    environ.update(COLUMNS="200", **env)
    return subprocess.run(
        command, cwd=cwd, env=environ, capture_output=True, text=True, check=False, timeout=120
    )


@pytest.mark.parametrize("command", sorted(OPTIONS))
@pytest.mark.parametrize("how", ["allocator", "python -m bench"])
def test_help_lists_the_options(command: str, how: str, tmp_path: Path) -> None:
    if how == "allocator":
        # The console script, run away from the checkout: it finds bench/ from project_root().
        result = _run([ALLOCATOR, "bench", command, "--help"], tmp_path)
        usage = f"allocator bench {command}"
    else:
        result = _run([sys.executable, "-m", "bench", command, "--help"], ROOT)
        usage = f"python -m bench {command}"
    assert result.returncode == 0, result.stdout + result.stderr
    assert usage in result.stdout
    for option in OPTIONS[command]:
        assert option in result.stdout, f"{option} missing from {usage} --help"


def test_bench_group_lists_both_commands(tmp_path: Path) -> None:
    result = _run([ALLOCATOR, "bench", "--help"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pipeline" in result.stdout and "quality" in result.stdout


def test_without_the_bench_package_allocator_bench_says_where_it_runs(tmp_path: Path) -> None:
    # A project root with no bench/ (as with the installed package alone).
    result = _run(
        [ALLOCATOR, "bench", "pipeline", "--help"], tmp_path, ALLOCATOR_HOME=str(tmp_path)
    )
    assert result.returncode == 2
    assert "python -m bench" in result.stderr
    assert "--scenario" not in result.stdout
    other = _run([ALLOCATOR, "--help"], tmp_path, ALLOCATOR_HOME=str(tmp_path))
    assert other.returncode == 0 and "bench" in other.stdout


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["pipeline", "--workers", "0"], "--workers"),
        (["pipeline", "--bookings", "-1"], "--bookings"),
        (["pipeline", "--contention-bookings", "-3"], "--contention-bookings"),
        (["pipeline", "--scenario", "rush"], "--scenario"),
        (["quality", "--instances", "0"], "--instances"),
        (["quality", "--strategy-weights", "{"], "--strategy-weights"),
        (["quality", "--strategy-weights", '{"zone_preference": true}'], "--strategy-weights"),
    ],
)
def test_bad_options_are_usage_errors(
    argv: list[str],
    option: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Refused while the command line is read: no database is needed.
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("DATABASE_URL", "postgresql://bench-cli-test.invalid/none")
    assert run(argv) == 2
    assert f"Invalid value for '{option}'" in capsys.readouterr().err


def test_scenario_choices_are_the_benchmark_scenarios() -> None:
    from bench.cli import Scenario
    from bench.pipeline import SCENARIOS

    assert [s.value for s in Scenario] == [*SCENARIOS, "all"]
