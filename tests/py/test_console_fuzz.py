"""Schemathesis fuzzes the published OpenAPI schema against the running service: no answer
is a server error and every status is one the schema documents."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.py.console import ConsoleWorld, console_world

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.fixture(scope="module")
def world(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleWorld]:
    with console_world(db_url, tmp_path_factory.mktemp("console")) as w:
        yield w


# One worker: schemathesis's threads can trip CPython 3.11's ast.parse ("AST constructor
# recursion depth mismatch") inside hypothesis, an error of the fuzzer, not of the service.
def fuzz(
    world: ConsoleWorld, token: str, report: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{world.base}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance",
            "--header",
            f"Authorization: Bearer {token}",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "40",
            "--seed",
            "1",
            "--workers",
            "2",
            "--request-timeout",
            "20",
            "--no-color",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_fuzzed_requests_get_documented_statuses_and_no_5xx(
    world: ConsoleWorld, tmp_path: Path
) -> None:
    with psycopg.connect(world.db) as conn:
        row = conn.execute(
            "select count(*) from allocator.bookings where restaurant_id = %s",
            (world.b.restaurant_id,),
        ).fetchone()
    before_b = row[0] if row else None
    result = fuzz(world, world.a.token, tmp_path / "fuzz.xml")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert (tmp_path / "fuzz.xml").read_text().count("<testcase") >= 8, "every operation was fuzzed"
    with psycopg.connect(world.db) as conn:
        row = conn.execute(
            "select count(*) from allocator.bookings where restaurant_id = %s",
            (world.b.restaurant_id,),
        ).fetchone()
    assert row is not None and row[0] == before_b, "ann's fuzzing wrote nothing at restaurant B"
