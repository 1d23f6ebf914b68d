"""The race specs in tests/isolation, replayed by PostgreSQL's own pg_isolation_regress."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from control import migrate
from control.cluster import pg_bindir
from tests.conftest import create_database, database_name_for, drop_database

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted(p.stem for p in (ROOT / "tests" / "isolation" / "specs").glob("*.spec"))


def isolation_regress() -> Path:
    return (
        pg_bindir().parent / "lib" / "pgxs" / "src" / "test" / "isolation" / "pg_isolation_regress"
    )


@pytest.fixture(scope="module")
def isolation_db() -> Iterator[str]:
    name = database_name_for("isolation")
    url = create_database(name)
    migrate.upgrade("head", url=url)
    yield url
    drop_database(name)


def test_every_spec_has_expected_output() -> None:
    assert len(SPECS) >= 5
    for spec in SPECS:
        assert (ROOT / "tests" / "isolation" / "expected" / f"{spec}.out").exists(), spec


def test_isolation_specs(isolation_db: str, tmp_path: Path) -> None:
    params = conninfo_to_dict(isolation_db)
    cmd = [
        str(isolation_regress()),
        "--use-existing",
        f"--host={params['host']}",
        f"--port={params['port']}",
        f"--user={params.get('user', 'postgres')}",
        f"--dbname={params['dbname']}",
        f"--inputdir={ROOT / 'tests' / 'isolation'}",
        f"--outputdir={tmp_path}",
        *SPECS,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    diffs = tmp_path / "regression.diffs"
    assert proc.returncode == 0, (
        proc.stdout + proc.stderr + (diffs.read_text() if diffs.exists() else "")
    )
    assert f"All {len(SPECS)} tests passed" in proc.stdout
