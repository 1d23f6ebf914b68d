"""pg_cron schedules on a cluster of their own (pg_cron lives in one database per cluster)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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
        (rid,) = conn.execute(  # type: ignore[misc]
            'select allocator.import_layout(\'{"name": "Cron", "timezone": "America/New_York", '
            '"tables": [{"label": "C1", "max_capacity": 2}]}\') ->> \'restaurant_id\''
        ).fetchone()
        # A per-restaurant job of an earlier install, at a UTC time fixed for one offset.
        conn.execute(
            "select cron.schedule(%s, '30 8 * * *', %s)",
            (f"allocator-optimize-{rid}", f"select allocator.nightly_optimize({rid})"),
        )
        conn.commit()
    for _ in range(2):
        result = allocator_cli(cron_cluster, "schedule", "install")
        assert result.returncode == 0, result.stdout + result.stderr
    with psycopg.connect(cron_cluster.url()) as conn:
        jobs = conn.execute(
            "select jobname, schedule, command from cron.job where jobname like 'allocator-%' order by 1"
        ).fetchall()
    names = [name for name, _, _ in jobs]
    assert len(names) == len(set(names)) == 6
    # The nightly optimizer is one job for every restaurant, every minute: each restaurant's
    # plan runs at its cut-off in its own time zone, whatever the UTC offset that night.
    assert ("allocator-nightly", "* * * * *", "call allocator.nightly_sweep()") in jobs
    assert f"allocator-optimize-{rid}" not in names, "the old per-restaurant job is removed"
    assert ("allocator-expire-holds", "* * * * *", "select allocator.expire_holds()") in jobs
    assert ("allocator-run-due", "* * * * *", "call allocator.sweep(500)") in jobs
    assert ("allocator-no-shows", "* * * * *", "select allocator.mark_no_shows()") in jobs
    assert ("allocator-waitlist", "* * * * *", "select allocator.offer_waitlists()") in jobs
    listed = allocator_cli(cron_cluster, "schedule", "list")
    assert "allocator-run-due" in listed.stdout
    removed = allocator_cli(cron_cluster, "schedule", "remove")
    assert removed.returncode == 0
    with psycopg.connect(cron_cluster.url()) as conn:
        assert conn.execute(
            "select count(*) from cron.job where jobname like 'allocator-%'"
        ).fetchone() == (0,)


def test_nightly_sweep_plans_each_restaurant_once_at_its_cutoff(cron_cluster: Cluster) -> None:
    """What the allocator-nightly job runs, with the clock set for the session (the procedure
    commits after each restaurant, so the clock must outlive its transactions)."""
    with psycopg.connect(cron_cluster.url()) as conn:
        ids = {}
        for name, timezone, cutoff in (
            ("Sweep NY", "America/New_York", "00:30"),
            ("Sweep Chatham", "Pacific/Chatham", "03:30"),
            ("Sweep Paris", "Europe/Paris", "23:00"),
        ):
            layout = (
                f'{{"name": "{name}", "timezone": "{timezone}", '
                f'"settings": {{"pooling": {{"cutoff": "{cutoff}"}}}}, '
                '"tables": [{"label": "S1", "max_capacity": 2}]}'
            )
            row = conn.execute(
                "select (allocator.import_layout(%s::jsonb) ->> 'restaurant_id')::bigint", (layout,)
            ).fetchone()
            assert row is not None
            ids[name] = row[0]
        conn.commit()
    rids = list(ids.values())

    def sweep_at(at: str) -> list[tuple[str, str]]:
        with psycopg.connect(cron_cluster.url(), autocommit=True) as conn:
            conn.execute(f"set allocator.clock = '{at}'")
            conn.execute("call allocator.nightly_sweep()")
            rows = conn.execute(
                """select r.name, p.day::text from allocator.nightly_plans p
                     join allocator.restaurants r on r.id = p.restaurant_id
                    where p.restaurant_id = any(%s) and p.status = 'done' order by 1, 2""",
                (rids,),
            ).fetchall()
            return [(name, day) for name, day in rows]

    # 2026-11-02 00:29 EST: New York's cut-off is a minute away; Chatham (19:14 +13:45) is
    # past its 03:30; Paris (06:29 CET) is before its 23:00.
    assert sweep_at("2026-11-02 05:29+00") == [("Sweep Chatham", "2026-11-02")]
    assert sweep_at("2026-11-02 05:30+00") == [
        ("Sweep Chatham", "2026-11-02"),
        ("Sweep NY", "2026-11-02"),
    ], "00:30 EST, the first minute of New York's cut-off, after the change to winter time"
    assert sweep_at("2026-11-02 05:31+00") == sweep_at("2026-11-02 05:30+00"), "never twice"
    with psycopg.connect(cron_cluster.url()) as conn:
        xacts = conn.execute(
            "select count(distinct xmin::text) from allocator.nightly_plans where restaurant_id = any(%s)",
            (rids,),
        ).fetchone()
        runs = conn.execute(
            "select count(*) from allocator.optimizer_runs where restaurant_id = any(%s)", (rids,)
        ).fetchone()
    assert xacts == (2,), "one transaction per restaurant"
    assert runs == (2,), "one optimizer run per restaurant and day"
