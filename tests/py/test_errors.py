"""The project's SQLSTATEs are one list: the database, the Python classes and the docs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

from control.errors import (
    BY_SQLSTATE,
    AllocatorError,
    Conflict,
    InvalidSettings,
    NotFound,
    translate,
)

ROOT = Path(__file__).resolve().parents[2]


def documented_codes() -> dict[str, str]:
    text = (ROOT / "docs" / "errors.md").read_text()
    return dict(re.findall(r"^\|\s*`?(RA\d{3})`?\s*\|\s*`?(\w+)`?\s*\|", text, re.MULTILINE))


def test_database_python_and_docs_agree(conn: psycopg.Connection[Any]) -> None:
    in_db = dict(conn.execute("select sqlstate, name from allocator.error_codes").fetchall())
    in_python = {code: cls.name for code, cls in BY_SQLSTATE.items() if code.startswith("RA")}
    assert in_db == in_python
    assert documented_codes() == in_db


@pytest.mark.parametrize(
    ("name", "cls"),
    [(cls.name, cls) for cls in AllocatorError.__subclasses__()],
)
def test_each_code_translates_to_its_class(
    conn: psycopg.Connection[Any], name: str, cls: type[AllocatorError]
) -> None:
    with pytest.raises(psycopg.Error) as excinfo:
        conn.execute("select allocator.raise_error(%s, 'message', 'detail', 'hint')", (name,))
    conn.rollback()
    err = translate(excinfo.value)
    assert type(err) is cls
    assert isinstance(err, AllocatorError)
    assert (err.message, err.detail, err.hint) == ("message", "detail", "hint")


def test_invalid_settings_reach_python_as_their_class(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.Error) as excinfo:
        conn.execute(
            "insert into allocator.restaurants (name, settings) values "
            "('x', '{\"turn_minutes\": {\"2\": -5}}')"
        )
    conn.rollback()
    err = translate(excinfo.value)
    assert isinstance(err, InvalidSettings)
    assert "turn_minutes.2" in err.message


def test_exclusion_violation_is_a_conflict(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute(
        'select allocator.import_layout(\'{"name": "Errors", '
        '"tables": [{"label": "E1", "max_capacity": 2}]}\')'
    ).fetchone()
    assert row is not None
    restaurant_id = row[0]["restaurant_id"]
    (table_id,) = conn.execute(
        "select id from allocator.tables where restaurant_id = %s", (restaurant_id,)
    ).fetchone() or (None,)
    (booking_id,) = conn.execute(
        "insert into allocator.bookings (restaurant_id, party_size, period) "
        "values (%s, 2, '[2026-01-01 19:00+00, 2026-01-01 21:00+00)') returning id",
        (restaurant_id,),
    ).fetchone() or (None,)
    insert = (
        "insert into allocator.allocations (restaurant_id, booking_id, table_id, period, kind) "
        "values (%s, %s, %s, %s, 'confirmed')"
    )
    conn.execute(
        insert, (restaurant_id, booking_id, table_id, "[2026-01-01 19:00+00, 2026-01-01 21:00+00)")
    )
    with pytest.raises(psycopg.Error) as direct, conn.transaction():
        conn.execute(
            insert,
            (restaurant_id, booking_id, table_id, "[2026-01-01 20:00+00, 2026-01-01 22:00+00)"),
        )
    assert direct.value.sqlstate == "23P01"
    assert isinstance(translate(direct.value), Conflict)
    with pytest.raises(psycopg.Error) as wrapped, conn.transaction():
        conn.execute(
            "select allocator.insert_allocations(%s, %s, array[%s]::bigint[], %s, 'confirmed')",
            (restaurant_id, booking_id, table_id, "[2026-01-01 20:00+00, 2026-01-01 22:00+00)"),
        )
    assert wrapped.value.sqlstate == "RA003"
    err = translate(wrapped.value)
    assert isinstance(err, Conflict)
    assert err.detail is not None and str(booking_id) in err.detail


def test_foreign_errors_are_left_alone(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.Error) as excinfo:
        conn.execute("select 1/0")
    conn.rollback()
    assert translate(excinfo.value) is excinfo.value
    assert not isinstance(translate(excinfo.value), NotFound)
