"""The embedded cluster: starts from nothing, is idempotent, keeps its data, has the
extensions the project needs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from control.cluster import Cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    # Not started: the tests start it themselves, from nothing.
    c = Cluster.for_project(tmp_path)
    try:
        yield c
    finally:
        c.stop()
        real = c.home.resolve()
        if c.home.is_symlink():
            c.home.unlink()
        shutil.rmtree(real, ignore_errors=True)


def test_lifecycle_and_durability(cluster: Cluster) -> None:
    assert not cluster.initialized
    assert not cluster.running()
    assert cluster.start() is True
    assert cluster.running()
    assert cluster.start() is False, "a second start is a no-op"

    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute("create table kept (v text)")
        conn.execute("insert into kept values ('survives a restart')")
        settings = dict(
            conn.execute(
                "select name, setting from pg_settings where name in "
                "('shared_preload_libraries', 'cron.database_name', 'port', 'listen_addresses')"
            ).fetchall()
        )
    assert settings["shared_preload_libraries"] == "pg_cron,pg_stat_statements"
    assert settings["cron.database_name"] == "allocator"
    assert int(settings["port"]) == cluster.port
    assert settings["listen_addresses"] == "127.0.0.1"
    assert cluster.log_file.exists()

    assert cluster.stop() is True
    assert not cluster.running()
    assert cluster.stop() is False
    assert cluster.start() is True
    with psycopg.connect(cluster.url()) as conn:
        assert conn.execute("select v from kept").fetchall() == [("survives a restart",)]
        # The project database has pg_stat_statements, and it records what runs there.
        conn.execute("select count(*) from kept")
        calls = conn.execute(
            "select count(*) from pg_stat_statements where query like 'select count(*) from kept%'"
        ).fetchone()
        assert calls is not None and calls[0] >= 1


def test_a_cluster_made_before_pg_stat_statements_preloads_it_at_its_next_start(
    cluster: Cluster,
) -> None:
    cluster.start()
    cluster.stop()
    conf = cluster.data_dir / "allocator.conf"
    conf.write_text(
        conf.read_text().replace(
            "shared_preload_libraries = 'pg_cron,pg_stat_statements'",
            "shared_preload_libraries = 'pg_cron'",
        )
    )
    cluster.start()
    with psycopg.connect(cluster.url()) as conn:
        row = conn.execute("show shared_preload_libraries").fetchone()
    assert row == ("pg_cron,pg_stat_statements",)


def test_extensions_the_project_needs(cluster: Cluster) -> None:
    cluster.start()
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        for extension in ("pg_cron", "plpython3u", "btree_gist", "pgtap", "plpgsql_check"):
            conn.execute(f"create extension if not exists {extension}")
        conn.execute(
            "create function scipy_version() returns text language plpython3u as "
            "$$ import scipy; return scipy.__version__ $$"
        )
        row = conn.execute("select scipy_version()").fetchone()
    assert row is not None and row[0].count(".") >= 1, "PL/Python imports SciPy"
