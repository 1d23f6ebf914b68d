"""Test harness: a real PostgreSQL (the embedded cluster, or DATABASE_URL's server), one
migrated database per test session, and pgTAP files collected as pytest items."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from control import migrate
from control.cluster import Cluster

ROOT = Path(__file__).resolve().parent.parent
TEST_EXTENSIONS = ("pgtap", "plpgsql_check")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        default=False,
        help="run the long versions of the property and fault tests",
    )


@pytest.fixture(scope="session")
def soak(pytestconfig: pytest.Config) -> bool:
    """Whether the long (soak) versions of the randomized and fault tests run."""
    return bool(pytestconfig.getoption("--soak"))


def server_url(database: str) -> str:
    """A URL for ``database`` on the server the tests use."""
    env = os.environ.get("DATABASE_URL")
    if env:
        return make_conninfo(env, dbname=database)
    cluster = Cluster.for_project(ROOT)
    cluster.start()
    return make_conninfo(cluster.url(), dbname=database)


def maintenance_url() -> str:
    return server_url("postgres")


def create_database(name: str) -> str:
    """(Re)create an empty database on the test server and return its URL."""
    with psycopg.connect(maintenance_url(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    return server_url(name)


def drop_database(name: str) -> None:
    with psycopg.connect(maintenance_url(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def database_name_for(worker: str, purpose: str = "") -> str:
    """A database name private to this test process (two runs side by side never collide)."""
    suffix = f"_{purpose}" if purpose else ""
    return f"allocator_test_{os.getpid()}_{worker}{suffix}"


@contextmanager
def private_cluster(home: Path, *, migrated: bool = True) -> Iterator[Cluster]:
    """A cluster of the test's own under ``home`` (for tests that restart it or need
    pg_cron in its project database), removed afterwards."""
    cluster = Cluster.for_project(home)
    try:
        cluster.start()
        if migrated:
            migrate.upgrade("head", url=cluster.url())
        yield cluster
    finally:
        cluster.stop()
        real = cluster.home.resolve()
        if cluster.home.is_symlink():
            cluster.home.unlink()
        shutil.rmtree(real, ignore_errors=True)


_DB_URL = pytest.StashKey[str]()


def session_database(config: pytest.Config) -> str:
    """The database of this test session (one per xdist worker), created and migrated once:
    migrated to head, with pgTAP and plpgsql_check installed."""
    if _DB_URL not in config.stash:
        worker = str(getattr(config, "workerinput", {}).get("workerid", "main"))
        url = create_database(database_name_for(worker))
        migrate.upgrade("head", url=url)
        with psycopg.connect(url, autocommit=True) as conn:
            for extension in TEST_EXTENSIONS:
                conn.execute(f"create extension if not exists {extension}")
        config.stash[_DB_URL] = url
    return config.stash[_DB_URL]


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _DB_URL in session.config.stash:
        worker = str(getattr(session.config, "workerinput", {}).get("workerid", "main"))
        drop_database(database_name_for(worker))


@pytest.fixture(scope="session")
def db_url(pytestconfig: pytest.Config) -> str:
    """URL of the session's migrated database."""
    return session_database(pytestconfig)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection whose work is rolled back after the test."""
    with psycopg.connect(db_url) as connection:
        yield connection
        connection.rollback()


# ---------------------------------------------------------------------------------------
# pgTAP: every tests/sql/*.sql file is one pytest item, run by psql inside a transaction
# that is rolled back, so files never see each other's rows.

_TAP_LINE = re.compile(r"^(not ok|ok) (\d+)(?: - (.*))?$")
_TAP_PLAN = re.compile(r"^1\.\.(\d+)$")


@dataclass
class TapResult:
    planned: int | None
    passed: list[str]
    failed: list[str]
    output: str


def parse_tap(output: str) -> TapResult:
    planned: int | None = None
    passed: list[str] = []
    failed: list[str] = []
    for raw in output.splitlines():
        line = raw.strip()
        if m := _TAP_PLAN.match(line):
            planned = int(m.group(1))
        elif m := _TAP_LINE.match(line):
            (passed if m.group(1) == "ok" else failed).append(line)
    return TapResult(planned, passed, failed, output)


class PgTapError(Exception):
    pass


class PgTapFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield PgTapItem.from_parent(self, name=self.path.stem)


class PgTapItem(pytest.Item):
    def runtest(self) -> None:
        url = session_database(self.config)
        script = f"begin;\n\\i {self.path}\nrollback;\n"
        proc = subprocess.run(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url],
            input=script,
            capture_output=True,
            text=True,
            check=False,
        )
        result = parse_tap(proc.stdout)
        problems = []
        if proc.returncode != 0:
            problems.append(f"psql exited {proc.returncode}: {proc.stderr.strip()}")
        if result.failed:
            problems.append(f"{len(result.failed)} assertion(s) failed")
        if result.planned is None:
            problems.append("no plan: the file must call plan(n)")
        elif result.planned != len(result.passed) + len(result.failed):
            problems.append(
                f"planned {result.planned} tests, ran {len(result.passed) + len(result.failed)}"
            )
        if not result.passed and not result.failed:
            problems.append("no assertion ran")
        if problems:
            raise PgTapError(
                "; ".join(problems)
                + "\n--- TAP output ---\n"
                + proc.stdout
                + ("\n--- stderr ---\n" + proc.stderr if proc.stderr else "")
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, PgTapError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"pgTAP {self.path.name}"


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    in_sql_tests = file_path.parent.name == "sql" and file_path.parent.parent.name == "tests"
    if in_sql_tests and file_path.suffix == ".sql" and file_path.name.startswith("test_"):
        return PgTapFile.from_parent(parent, path=file_path)
    return None
