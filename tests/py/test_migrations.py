"""Migrations and the declared schema can never drift apart; migrations go down and up."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from control import migrate
from control.cluster import pg_bindir
from control.sqlfiles import manifest, run_sql_files, sql_dir
from tests.conftest import create_database, database_name_for, drop_database


def schema_dump(url: str) -> str:
    """pg_dump of the schema, without alembic's bookkeeping and dump noise."""
    params = conninfo_to_dict(url)
    args = [
        str(pg_bindir() / "pg_dump"),
        "--schema-only",
        "--no-owner",
        "--no-privileges",
        "--exclude-table=public.alembic_version",
        "-d",
        url,
    ]
    dump = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    assert params  # the URL parsed
    lines = [
        line
        for line in dump.splitlines()
        if line
        and not line.startswith("--")
        and not line.startswith("SET ")
        and not line.startswith("SELECT pg_catalog.set_config")
        and not re.match(r"^\\(un)?restrict ", line)
    ]
    return "\n".join(lines)


def table_rows(url: str, table: str) -> list[tuple[object, ...]]:
    name, _, columns = table.partition(" ")
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"select {columns.strip('()') or '*'} from {name} order by 1, 2"
        ).fetchall()


@pytest.fixture
def scratch(worker_name: str) -> Iterator[tuple[str, str]]:
    names = (
        database_name_for(worker_name, "migrated"),
        database_name_for(worker_name, "declared"),
    )
    urls = (create_database(names[0]), create_database(names[1]))
    yield urls
    for name in names:
        drop_database(name)


@pytest.fixture(scope="session")
def worker_name(pytestconfig: pytest.Config) -> str:
    return str(getattr(pytestconfig, "workerinput", {}).get("workerid", "main"))


def apply_declared(url: str) -> None:
    with psycopg.connect(url) as conn:
        run_sql_files(conn, manifest())


def test_manifest_names_every_schema_file() -> None:
    files = {p.name for p in sql_dir().glob("*.sql")}
    assert {name for name in manifest() if not name.startswith("plpy:")} == files


def test_migrations_match_declared_schema(scratch: tuple[str, str]) -> None:
    migrated, declared = scratch
    migrate.upgrade("head", url=migrated)
    apply_declared(declared)
    assert schema_dump(migrated) == schema_dump(declared)
    for table in (
        "allocator.error_codes",
        "allocator.booking_states",
        "allocator.booking_transitions",
        "allocator.plpy_modules (name, sha256)",
    ):
        assert table_rows(migrated, table) == table_rows(declared, table)


def test_up_down_up(scratch: tuple[str, str]) -> None:
    url, declared = scratch
    migrate.upgrade("head", url=url)
    first = schema_dump(url)
    assert "CREATE TABLE allocator.allocations" in first
    migrate.downgrade("base", url=url)
    with psycopg.connect(url) as conn:
        left = conn.execute(
            "select count(*) from pg_namespace where nspname = 'allocator'"
        ).fetchone()
        version = conn.execute("select count(*) from public.alembic_version").fetchone()
    assert left == (0,)
    assert version == (0,)
    migrate.upgrade("head", url=url)
    assert schema_dump(url) == first
    apply_declared(declared)
    assert schema_dump(declared) == first


def test_each_revision_reverts_cleanly(scratch: tuple[str, str]) -> None:
    url, _ = scratch
    migrate.upgrade("0001", url=url)
    at_first = schema_dump(url)
    migrate.upgrade("head", url=url)
    assert schema_dump(url) != at_first
    migrate.downgrade("0001", url=url)
    assert schema_dump(url) == at_first
