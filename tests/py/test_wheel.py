"""The package as a user installs it: a wheel built from the repository carries the schema
(migrations, code, grant list, solver) and no benchmarks, and `allocator migrate up` from a
fresh virtual environment builds the schema in a scratch database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import create_database, database_name_for, drop_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the sources (the checkout stays as it is)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("control", "plpy_functions", "bench"):
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-q", "-w", str(out), str(source)],
        check=True, capture_output=True, text=True,
    )
    (built,) = out.glob("allocator-*.whl")
    return built


@pytest.fixture
def scratch_url() -> Iterator[str]:
    name = database_name_for("wheel")
    yield create_database(name)
    drop_database(name)


def test_wheel_carries_the_schema_and_no_benchmarks(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "control/sql/manifest",
        "control/sql/grants.toml",
        "control/sql/engine.sql",
        "control/queries.sql",
        "control/migrations/env.py",
        "control/migrations/released.lock",
        "control/migrations/versions/0001_baseline.py",
        "control/migrations/versions/0001_baseline.sql",
        "control/migrations/versions/0001_baseline.down.sql",
        "plpy_functions/solver.py",
    ):
        assert needed in names, f"the wheel lacks {needed}"
    assert not [n for n in names if n.startswith("bench/") or n.startswith("tests/")]


def test_installed_wheel_migrates_a_scratch_database(
    wheel: Path, scratch_url: str, tmp_path: Path
) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    # The wheel goes in with no dependencies; those come from this environment's
    # site-packages on PYTHONPATH, which holds no copy of the project (PYTHONPATH runs no
    # .pth file, so the checkout's editable install stays out).
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
         "--disable-pip-version-check", str(wheel)],
        check=True, capture_output=True, text=True,
    )
    env = {
        key: value for key, value in os.environ.items() if key not in ("ALLOCATOR_HOME",)
    }
    env.update(
        DATABASE_URL=scratch_url,
        PYTHONPATH=sysconfig.get_paths()["purelib"],
    )
    where = subprocess.run(
        [str(python), "-c", "import control; print(control.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    )
    assert str(env_dir) in where.stdout, "the installed copy is the one imported"
    up = subprocess.run(
        [str(env_dir / "bin" / "allocator"), "migrate", "up"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    with psycopg.connect(scratch_url) as conn:
        row = conn.execute(
            """select (select count(*) from allocator.code_version),
                      (select count(*) from allocator.plpy_modules where name = 'solver'),
                      has_function_privilege('allocator_app',
                        'allocator.create_booking(bigint, integer, timestamptz, integer, text, text, jsonb, text, text, text)',
                        'EXECUTE')"""
        ).fetchone()
    assert row == (1, 1, True)
    bench = subprocess.run(
        [str(env_dir / "bin" / "allocator"), "bench", "pipeline", "--help"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )
    assert bench.returncode == 2 and "source checkout" in bench.stderr
