"""docs/api.md: its generated reference matches the catalog of a migrated database, and the
generator takes privileges and SQLSTATEs from the catalog."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from control.apidocs import (
    BEGIN_MARKER,
    END_MARKER,
    api_doc_diff,
    collect_routines,
    collect_views,
    render_reference,
    splice_reference,
)

ROOT = Path(__file__).resolve().parents[2]
API_DOC = ROOT / "docs" / "api.md"
ALLOCATOR = str(Path(sys.executable).with_name("allocator"))
ROLES_ALL = ("allocator_app", "allocator_console", "allocator_ops", "allocator_readonly")

PROBE = """
create function allocator.docs_probe(p_restaurant_id bigint) returns void
language plpgsql
as $$
begin
  -- allocator.cancel_booking( is named in a comment only, so it is not followed
  perform allocator.require_restaurant(p_restaurant_id);
  raise exception using errcode = 'RA011', message = 'probe';
end
$$;
comment on function allocator.docs_probe(bigint) is 'A probe of the reference generator';
revoke execute on function allocator.docs_probe(bigint) from public;
grant execute on function allocator.docs_probe(bigint) to allocator_ops;
"""


def section(reference: str, heading: str) -> str:
    """The text of one ``####`` entry of the reference."""
    start = reference.index(f"#### {heading}\n")
    ends = [i for i in (reference.find("\n###", start + 1),) if i >= 0]
    return reference[start : min(ends) if ends else len(reference)]


def test_committed_api_doc_is_current(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        diff = api_doc_diff(conn, API_DOC)
    assert not diff, (
        "docs/api.md does not match the schema: run `allocator docs` (on a database migrated "
        "to head) and commit the result.\n" + "\n".join(diff[:80])
    )


def test_reference_is_deterministic(conn: psycopg.Connection[Any]) -> None:
    first = render_reference(conn)
    assert render_reference(conn) == first
    assert first.startswith(BEGIN_MARKER) and first.endswith(END_MARKER)


def test_callers_are_read_from_the_catalog(conn: psycopg.Connection[Any]) -> None:
    routines = {r.name: r for r in collect_routines(conn)}
    assert routines["create_booking"].roles == ("allocator_app", "allocator_console", "allocator_ops")
    assert routines["staff_password_hash"].roles == ("allocator_console",)
    assert routines["claim_due"].roles == ("allocator_ops",)
    # allocator_ops may execute what allocator_readonly may, through its membership.
    assert routines["check_invariants"].roles == ("allocator_ops", "allocator_readonly")
    assert not any(r.public for r in routines.values())
    # Internal functions are granted to no role and are not in the reference.
    assert "transition" not in routines and "import_layout" not in routines
    assert routines["sweep"].kind == "procedure" and routines["sweep"].result is None

    reference = render_reference(conn)
    claim_due = section(reference, "`allocator.claim_due`")
    assert "**Callable by:** `allocator_ops`; not `PUBLIC`" in claim_due
    assert "allocator_app" not in claim_due
    views = {v.name: v for v in collect_views(conn)}
    assert views["table_overview"].roles == ROLES_ALL
    assert views["queue_status"].roles == ("allocator_console", "allocator_ops", "allocator_readonly")


def test_a_new_grant_shows_in_the_reference(conn: psycopg.Connection[Any]) -> None:
    conn.execute(PROBE)
    probe = next(r for r in collect_routines(conn) if r.name == "docs_probe")
    assert probe.roles == ("allocator_ops",) and not probe.public
    # require_restaurant raises RA001 and RA002; the literal errcode is RA011; the call named
    # in the comment (cancel_booking, RA004 and more) is not followed.
    assert [code for code, _ in probe.sqlstates] == ["RA001", "RA002", "RA011"]
    reference = render_reference(conn)
    entry = section(reference, "`allocator.docs_probe`")
    assert "A probe of the reference generator" in entry
    assert "**Callable by:** `allocator_ops`; not `PUBLIC`" in entry
    assert "allocator_app" not in entry
    assert "`RA001 invalid_argument`, `RA002 not_found`, `RA011 capacity_mismatch`" in entry
    ops_only = reference.index("### Callable by `allocator_ops`\n")
    assert reference.index("#### `allocator.docs_probe`") > ops_only
    assert "| [`docs_probe`](#allocatordocs_probe) | `void` |  |  | yes |  |  |" in reference

    conn.execute("grant execute on function allocator.docs_probe(bigint) to public")
    probe = next(r for r in collect_routines(conn) if r.name == "docs_probe")
    # Every role may execute what PUBLIC may.
    assert probe.public and probe.roles == ROLES_ALL
    entry = section(render_reference(conn), "`allocator.docs_probe`")
    assert (
        "`allocator_app`, `allocator_console`, `allocator_ops`, `allocator_readonly`; also `PUBLIC`"
        in " ".join(entry.split())
    )


def test_sqlstates_follow_calls_and_triggers(conn: psycopg.Connection[Any]) -> None:
    routines = {r.name: r for r in collect_routines(conn)}
    create_booking = dict(routines["create_booking"].sqlstates)
    assert create_booking["RA001"] == "invalid_argument"
    assert {"RA002", "RA008"} <= create_booking.keys()
    # hold_tables reaches the exclusion constraint's conflict through insert_allocation.
    assert "RA003" in dict(routines["hold_tables"].sqlstates)
    # update_settings raises invalid_settings through the trigger on restaurants.
    assert "RA006" in dict(routines["update_settings"].sqlstates)
    # The clock check of allocator.now() is a literal errcode.
    assert dict(routines["now"].sqlstates) == {"RA009": "not_permitted"}
    entry = section(render_reference(conn), "`allocator.create_booking`")
    assert "`RA001 invalid_argument`" in entry


def test_splice_replaces_only_the_generated_part() -> None:
    reference = f"{BEGIN_MARKER}\nnew\n{END_MARKER}"
    document = f"# Title\n\nNarrative.\n\n{BEGIN_MARKER}\nold\n{END_MARKER}\n\nAfter.\n"
    assert splice_reference(document, reference) == (
        f"# Title\n\nNarrative.\n\n{BEGIN_MARKER}\nnew\n{END_MARKER}\n\nAfter.\n"
    )
    assert splice_reference("# Title\n", reference) == f"# Title\n\n{reference}\n"
    with pytest.raises(ValueError):
        splice_reference(f"{END_MARKER}\n{BEGIN_MARKER}\n", reference)
    with pytest.raises(ValueError):
        splice_reference(f"{BEGIN_MARKER}\n", reference)


def test_docs_command_checks_and_updates(db_url: str, tmp_path: Path) -> None:
    page = tmp_path / "api.md"
    narrative = "# The SQL API\n\nHand-written part.\n\n"
    page.write_text(f"{narrative}{BEGIN_MARKER}\nOUTDATED PLACEHOLDER\n{END_MARKER}\n")
    env = {**os.environ, "DATABASE_URL": db_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [ALLOCATOR, "docs", "--path", str(page), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    check = run("--check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "run `allocator docs`" in check.stderr
    assert "-OUTDATED PLACEHOLDER" in check.stdout
    assert "OUTDATED PLACEHOLDER" in page.read_text()

    update = run()
    assert update.returncode == 0, update.stdout + update.stderr
    assert "updated" in update.stdout
    text = page.read_text()
    assert text.startswith(narrative) and "OUTDATED PLACEHOLDER" not in text
    assert "#### `allocator.create_booking`" in text

    again = run("--check")
    assert again.returncode == 0, again.stdout + again.stderr
    assert run().stdout.startswith("unchanged")
