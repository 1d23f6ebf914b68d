"""Migrations and code: released migrations never change, the code is re-applied when it
changes, an existing database upgrades to exactly what a fresh install builds, and the
committed schema snapshot is the schema."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.script import ScriptDirectory
from psycopg.types.json import Json

from control import migrate, sqlfiles
from control.layout import load_layout
from control.snapshot import schema_snapshot
from tests.conftest import create_database, database_name_for, drop_database

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "docs" / "schema.sql"


@pytest.fixture(scope="session")
def worker_name(pytestconfig: pytest.Config) -> str:
    return str(getattr(pytestconfig, "workerinput", {}).get("workerid", "main"))


@pytest.fixture
def scratch(worker_name: str) -> Iterator[tuple[str, str]]:
    """Two empty databases of the test's own."""
    names = (
        database_name_for(worker_name, "upgraded"),
        database_name_for(worker_name, "fresh"),
    )
    urls = (create_database(names[0]), create_database(names[1]))
    yield urls
    for name in names:
        drop_database(name)


def revisions() -> list[str]:
    """The revisions from the first to head."""
    script = ScriptDirectory.from_config(migrate.alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def rows_of_every_table(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every allocator table, as text, in a stable order."""
    with psycopg.connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                """select c.relname from pg_class c
                    where c.relnamespace = 'allocator'::regnamespace and c.relkind = 'r'
                    order by 1"""
            ).fetchall()
        ]
        return {
            table: conn.execute(
                f"select t::text from allocator.{table} t order by 1"  # names from the catalog
            ).fetchall()
            for table in tables
        }


def load_busy_day(url: str) -> None:
    """A restaurant's evening through the RPCs: confirmed, held, cancelled, manual review, retries."""
    with psycopg.connect(url) as conn:
        restaurant = load_layout(conn, ROOT / "data" / "sample_restaurant.json", replace=True)
        start = datetime.now(UTC).replace(hour=18, minute=0, second=0, microsecond=0) + timedelta(
            days=1
        )
        bookings = []
        for n in range(60):
            result = conn.execute(
                "select allocator.create_booking(%s::bigint, %s::integer, %s::timestamptz, null, %s::text, null, %s::jsonb)",
                (
                    restaurant,
                    2 + n % 7,
                    start + timedelta(minutes=15 * (n % 12)),
                    f"busy-{n}",
                    Json({"n": n}),
                ),
            ).fetchone()
            assert result is not None
            bookings.append(result[0]["booking_id"])
        for booking in bookings[:40]:
            conn.execute("select allocator.process_booking(%s::bigint, 'worker:upgrade')", (booking,))
        held = conn.execute(
            """select b.id, array[t.id] from allocator.bookings b, allocator.tables t
                where b.id = any(%s) and b.state = 'assignment_pending' and t.restaurant_id = b.restaurant_id
                  and t.max_capacity >= b.party_size order by b.id, t.id limit 1""",
            (bookings[40:],),
        ).fetchone()
        if held is not None:
            conn.execute("select allocator.hold_tables(%s::bigint, %s::bigint[], 600)", held)
        for booking in bookings[50:55]:
            conn.execute(
                "select allocator.cancel_booking(%s::bigint, null, 'app', 'plans changed')", (booking,)
            )
        conn.execute("select allocator.deliver_notifications(10)")
        conn.commit()
    states = rows_of_every_table(url)
    assert len(states["events"]) > 100 and len(states["booking_state_history"]) > 100
    assert len(states["allocations"]) > 10 and len(states["booking_assignment_attempts"]) >= 40


def test_code_manifest_names_every_code_file() -> None:
    files = {entry.name for entry in sqlfiles.code_dir().iterdir() if entry.name.endswith(".sql")}
    listed = [name for name in sqlfiles.manifest() if not name.startswith("plpy:")]
    assert sorted(listed) == sorted(set(listed)), "a code file is listed twice"
    assert set(listed) == files


def test_released_migrations_never_change() -> None:
    released = sqlfiles.released()
    assert released, "the lock file lists the released revisions"
    current = sqlfiles.migration_files()
    changed = sorted(name for name, digest in released.items() if current.get(name) != digest)
    assert changed == [], (
        f"released migrations changed or vanished: {changed}; a change to the state is a new revision"
    )
    # Unreleased revisions come after every released one.
    order = revisions()
    released_revisions = {name.split("_")[0] for name in released}
    unreleased = [r for r in order if r not in released_revisions]
    assert order == [r for r in order if r in released_revisions] + unreleased


def test_editing_a_released_migration_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    name, digest = next(iter(sqlfiles.released().items()))
    files = dict(sqlfiles.migration_files(), **{name: "0" * 64})
    monkeypatch.setattr(sqlfiles, "migration_files", lambda: files)
    with pytest.raises(AssertionError, match=name):
        test_released_migrations_never_change()
    assert digest != "0" * 64


def test_code_is_reapplied_only_when_it_changes(
    scratch: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = scratch
    migrate.upgrade("head", url=url)
    with psycopg.connect(url) as conn:
        first = conn.execute("select checksum, applied_at from allocator.code_version").fetchone()
    migrate.upgrade("head", url=url)
    with psycopg.connect(url) as conn:
        again = conn.execute("select checksum, applied_at from allocator.code_version").fetchone()
    assert again == first, "nothing changed, so nothing was applied"

    # A changed function body reaches a database at head with `migrate up`.
    original = sqlfiles.read_code

    def edited(name: str) -> str:
        text = original(name)
        if name == "settings.sql":
            text = text.replace(
                "'The settings a restaurant gets for every key it does not set",
                "'Edited: the settings a restaurant gets for every key it does not set",
            )
            assert '"hold_ttl_seconds": 120,' in text
            text = text.replace('"hold_ttl_seconds": 120,', '"hold_ttl_seconds": 540,')
        return text

    monkeypatch.setattr(sqlfiles, "read_code", edited)
    migrate.upgrade("head", url=url)
    with psycopg.connect(url) as conn:
        ttl, comment, checksum = conn.execute(
            """select allocator.default_settings() ->> 'hold_ttl_seconds',
                      obj_description('allocator.default_settings()'::regprocedure, 'pg_proc'),
                      (select checksum from allocator.code_version)"""
        ).fetchone() or (None, None, None)
    assert first is not None
    assert (ttl, checksum != first[0]) == ("540", True)
    assert comment is not None and comment.startswith("Edited:")


def test_a_failing_code_file_leaves_the_database_as_it_was(
    scratch: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = scratch
    migrate.upgrade("head", url=url)
    before = schema_snapshot(url)
    original = sqlfiles.read_code
    monkeypatch.setattr(
        sqlfiles,
        "read_code",
        lambda name: original(name) + ("\nselect 1/0;\n" if name == "policies.sql" else ""),
    )
    with pytest.raises(psycopg.errors.DivisionByZero):
        migrate.upgrade("head", url=url)
    assert schema_snapshot(url) == before


def test_upgrade_from_the_previous_revision_matches_a_fresh_install(
    scratch: tuple[str, str],
) -> None:
    upgraded, fresh = scratch
    # The previous release (the newest released revision), else the revision before head.
    order = revisions()
    released = sorted({name.split("_")[0] for name in sqlfiles.released()})
    previous = released[-1] if released and released[-1] != order[-1] else None
    if previous is None and len(order) > 1:
        previous = order[-2]
    # The busy day is made by the code there is, head's, which may need state that revisions
    # after the previous release add: it is made at head, and the database is then taken down
    # to the previous release, whose rows are what the upgrade starts from.
    migrate.upgrade("head", url=upgraded)
    load_busy_day(upgraded)
    if previous is not None:
        migrate.downgrade(previous, url=upgraded)
    # (Only the baseline exists: the upgrade below starts from head itself.)
    before = rows_of_every_table(upgraded)
    migrate.upgrade("head", url=upgraded)
    migrate.upgrade("head", url=fresh)

    assert schema_snapshot(upgraded) == schema_snapshot(fresh)
    after = rows_of_every_table(upgraded)
    code_tables = {"code_version", "plpy_modules"}
    # Reference data a revision may extend (new error codes, states): equal to a fresh
    # install's, checked below.
    reference_tables = {"error_codes", "booking_states", "booking_transitions"}
    for table, rows in before.items():
        if table in code_tables | reference_tables:
            continue
        # A revision may add columns: each old row's text is a prefix of its new text.
        assert len(after[table]) == len(rows), f"{table}: rows lost or added by the upgrade"
        for old, new in zip(rows, after[table], strict=True):
            assert new[0].startswith(old[0].rstrip(")")), f"{table}: row changed: {old} -> {new}"
    reference = rows_of_every_table(fresh)
    for table in ("error_codes", "booking_states", "booking_transitions", "plpy_modules"):
        assert after[table] == reference[table] or table == "plpy_modules"


def test_up_down_up(scratch: tuple[str, str]) -> None:
    url, _ = scratch
    migrate.upgrade("head", url=url)
    first = schema_snapshot(url)
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
    assert schema_snapshot(url) == first


def test_committed_schema_snapshot_is_current(scratch: tuple[str, str]) -> None:
    url, _ = scratch
    migrate.upgrade("head", url=url)
    assert SNAPSHOT.read_text() == schema_snapshot(url), (
        "docs/schema.sql is stale: run `allocator docs` and commit the diff"
    )
