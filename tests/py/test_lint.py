"""SQL is linted as seriously as Python: it parses, plpgsql_check finds nothing, mypy and
ruff are clean on the control plane and the benchmarks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pglast
import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
SQL_FILES = sorted((ROOT / "control").rglob("*.sql"))


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_sql_file_parses(path: Path) -> None:
    # Client-side placeholders of the named queries stand for values.
    text = re.sub(r"%\(\w+\)s|%s", "NULL", path.read_text()).replace("%%", "%")
    statements = pglast.parse_sql(text)
    assert statements, f"{path} holds no statement"


def test_plpgsql_check_finds_no_error(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            """
            select p.oid::regprocedure::text, r.level, r.message, r.lineno
              from pg_proc p
              join pg_namespace n on n.oid = p.pronamespace
              join pg_language l on l.oid = p.prolang
              left join lateral (
                select t.tgrelid, t.tgnewtable, t.tgoldtable from pg_trigger t
                 where t.tgfoid = p.oid limit 1) trg on true
              cross join lateral plpgsql_check_function_tb(
                p.oid,
                coalesce(trg.tgrelid, 0),
                newtable => coalesce(trg.tgnewtable, trg.tgoldtable),
                oldtable => null) r
             where n.nspname = 'allocator' and l.lanname = 'plpgsql'
               and r.level = 'error'
            """
        ).fetchall()
        checked = conn.execute(
            """select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                join pg_language l on l.oid = p.prolang
               where n.nspname = 'allocator' and l.lanname = 'plpgsql'"""
        ).fetchone()
    assert checked is not None and checked[0] > 5
    assert rows == []


def _tool(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def test_ruff_clean() -> None:
    proc = subprocess.run(
        [_tool("ruff"), "check", "bench", "control", "tests", "plpy_functions"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_clean() -> None:
    proc = subprocess.run(
        [_tool("mypy"), "--strict", "control", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
