"""docs/contributing.md stays true: each walk-through names at most four files that exist,
and adding an RPC the way it says (its code file and one grant line) is enough for the
database, the privilege test, the fuzzer and the generated reference to know it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from control import migrate, sqlfiles
from control.apidocs import render_reference
from tests.conftest import create_database, database_name_for, drop_database
from tests.py.test_bad_input import rpcs_to_fuzz
from tests.py.test_security import expected_execute

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "contributing.md"
BLOCK = re.compile(r"<!-- files: (\w+) -->\n(.*?)<!-- end files -->", re.S)

NEW_RPC = """
create or replace function allocator.booking_party_size(p_booking_id bigint) returns integer
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_party integer;
begin
  select b.party_size into v_party from allocator.bookings b
   where b.id = p_booking_id and allocator.tenant_allows(b.restaurant_id);
  if not found then
    perform allocator.raise_error('not_found', pg_catalog.format('booking %s does not exist', p_booking_id));
  end if;
  return v_party;
end
$$;

comment on function allocator.booking_party_size(bigint) is 'The party size of a booking';
"""


def walkthroughs() -> dict[str, list[str]]:
    """Each walk-through's numbered steps."""
    found = {
        name: re.findall(r"^\d+\. (.*?)(?=^\d+\. |\Z)", body, re.S | re.M)
        for name, body in BLOCK.findall(GUIDE.read_text())
    }
    return found


def test_each_walkthrough_touches_at_most_four_files_that_exist() -> None:
    steps = walkthroughs()
    assert set(steps) == {"rpc", "state", "strategy", "setting"}
    for name, items in steps.items():
        assert 1 <= len(items) <= 4, f"{name}: {len(items)} files"
        for item in items:
            for path in re.findall(r"`((?:control|tests|docs|plpy_functions|bench)/[^`]+)`", item):
                if "<" in path or "*" in path or "NNNN" in path:
                    folder = ROOT / path.split("<")[0].split("NNNN")[0].rsplit("/", 1)[0]
                    assert folder.is_dir(), f"{name}: {path}"
                else:
                    assert (ROOT / path).exists(), f"{name}: {path} does not exist"


@pytest.fixture
def scratch_url() -> Iterator[str]:
    name = database_name_for("contributing")
    yield create_database(name)
    drop_database(name)


def test_adding_an_rpc_needs_its_code_file_and_one_grant_line(
    scratch_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = sqlfiles.read_code
    monkeypatch.setattr(
        sqlfiles,
        "read_code",
        lambda name: original(name) + (NEW_RPC if name == "bookings.sql" else ""),
    )
    listed = sqlfiles.grants()
    added = replace(
        listed,
        execute={**listed.execute, "booking_party_size": ("allocator_app", "allocator_ops")},
    )
    monkeypatch.setattr(sqlfiles, "grants", lambda: added)
    migrate.upgrade("head", url=scratch_url)

    with psycopg.connect(scratch_url) as conn:
        matrix = conn.execute(
            """select r.role, has_function_privilege(r.role, 'allocator.booking_party_size(bigint)', 'EXECUTE')
                 from unnest(array['allocator_app', 'allocator_ops', 'allocator_readonly', 'public']) r(role)
                order by 1"""
        ).fetchall()
        reference = render_reference(conn)
    assert {role: has for role, has in matrix} == {
        role: expected_execute(role, "booking_party_size", added)
        for role in ("allocator_app", "allocator_ops", "allocator_readonly", "public")
    }
    assert dict(matrix) == {
        "allocator_app": True, "allocator_ops": True, "allocator_readonly": False, "public": False,
    }
    assert "booking_party_size" in rpcs_to_fuzz(added), "the fuzzer finds it in the grant list"
    entry = reference[reference.index("allocator.booking_party_size") :][:1500]
    assert "The party size of a booking" in entry
    assert "RA002" in entry
