"""pg_cron schedules on a cluster of their own (pg_cron lives in one database per cluster)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from control.cluster import Cluster
from tests.conftest import private_cluster

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cron_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if os.environ.get("DATABASE_URL"):
        pytest.skip("needs the embedded cluster, where pg_cron is preloaded")
    with private_cluster(tmp_path_factory.mktemp("cron")) as cluster:
        yield cluster


def allocator_cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "control.cli", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": cluster.url(), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
    )


def test_schedule_install_twice_leaves_one_set(cron_cluster: Cluster) -> None:
    with psycopg.connect(cron_cluster.url()) as conn:
        conn.execute(
            'select allocator.import_layout(\'{"name": "Cron", "timezone": "America/New_York", '
            '"tables": [{"label": "C1", "max_capacity": 2}]}\')'
        )
        conn.commit()
    for _ in range(2):
        result = allocator_cli(cron_cluster, "schedule", "install")
        assert result.returncode == 0, result.stdout + result.stderr
    with psycopg.connect(cron_cluster.url()) as conn:
        jobs = conn.execute(
            "select jobname, schedule from cron.job where jobname like 'allocator-%' order by 1"
        ).fetchall()
    names = [name for name, _ in jobs]
    assert len(names) == len(set(names)) == 4
    with psycopg.connect(cron_cluster.url()) as conn:
        (rid,) = conn.execute("select id from allocator.restaurants where name = 'Cron'").fetchone()  # type: ignore[misc]
    # 03:30 in New York today, in UTC (pg_cron's clock).
    local = datetime.combine(
        datetime.now(ZoneInfo("America/New_York")).date(), time(3, 30), ZoneInfo("America/New_York")
    )
    utc = local.astimezone(UTC)
    assert (f"allocator-optimize-{rid}", f"{utc.minute} {utc.hour} * * *") in jobs
    assert ("allocator-expire-holds", "* * * * *") in jobs
    assert ("allocator-run-due", "* * * * *") in jobs
    listed = allocator_cli(cron_cluster, "schedule", "list")
    assert "allocator-run-due" in listed.stdout
    removed = allocator_cli(cron_cluster, "schedule", "remove")
    assert removed.returncode == 0
    with psycopg.connect(cron_cluster.url()) as conn:
        assert conn.execute(
            "select count(*) from cron.job where jobname like 'allocator-%'"
        ).fetchone() == (0,)
