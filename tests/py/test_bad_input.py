"""Bad input to every RPC gets the documented SQLSTATE and writes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Json

from control.sqlfiles import Grants, grants

DOCUMENTED = {f"RA{n:03d}" for n in range(1, 13)}


@pytest.fixture(scope="module")
def world(db_url: str) -> Iterator[dict[str, int]]:
    """Two restaurants, a booking with an active hold, a confirmed booking."""
    with psycopg.connect(db_url) as conn:
        ids: dict[str, int] = {}
        for name, label in (("Fuzz A", "FA"), ("Fuzz B", "FB")):
            layout = {
                "name": name,
                "tables": [
                    {"label": f"{label}1", "max_capacity": 4},
                    {"label": f"{label}2", "max_capacity": 2},
                ],
            }
            row = conn.execute(
                "select allocator.import_layout(%s::jsonb)", (json.dumps(layout),)
            ).fetchone()
            ids[name] = row[0]["restaurant_id"]  # type: ignore[index]
        a = ids["Fuzz A"]
        ids["table_a"], ids["table_a2"] = (
            r[0]
            for r in conn.execute(
                "select id from allocator.tables where restaurant_id = %s order by label", (a,)
            )
        )
        ids["table_b"] = conn.execute(
            "select min(id) from allocator.tables where restaurant_id = %s", (ids["Fuzz B"],)
        ).fetchone()[0]  # type: ignore[index]
        book = "select (allocator.create_booking(%s, 2, now() + interval '1 day' + %s * interval '1 hour', 90) ->> 'booking_id')::bigint"
        ids["booking"] = conn.execute(book, (a, 0)).fetchone()[0]  # type: ignore[index]
        ids["held"] = conn.execute(book, (a, 1)).fetchone()[0]  # type: ignore[index]
        ids["hold"] = conn.execute(
            "select (allocator.hold_tables(%s, array[%s]::bigint[], 600) ->> 'hold_id')::bigint",
            (ids["held"], ids["table_a"]),
        ).fetchone()[0]  # type: ignore[index]
        conn.commit()
    yield ids


def fingerprint(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    row = conn.execute(
        """select (select count(*) from allocator.bookings), (select sum(version) from allocator.bookings),
                  (select count(*) from allocator.allocations), (select count(*) from allocator.holds),
                  (select count(*) from allocator.booking_state_history), (select count(*) from allocator.events),
                  (select count(*) from allocator.assignment_queue), (select count(*) from allocator.restaurants)"""
    ).fetchone()
    assert row is not None
    return tuple(row)


BAD_CALLS: list[tuple[str, str, str]] = [
    # (description, SQL with {placeholders}, expected SQLSTATE)
    (
        "create: NULL restaurant",
        "select allocator.create_booking(NULL, 2, now() + interval '1 day')",
        "RA001",
    ),
    (
        "create: unknown restaurant",
        "select allocator.create_booking(-7, 2, now() + interval '1 day')",
        "RA002",
    ),
    (
        "create: party 0",
        "select allocator.create_booking({a}, 0, now() + interval '1 day')",
        "RA001",
    ),
    (
        "create: party -3",
        "select allocator.create_booking({a}, -3, now() + interval '1 day')",
        "RA001",
    ),
    (
        "create: party absurd",
        "select allocator.create_booking({a}, 2147483647, now() + interval '1 day')",
        "RA001",
    ),
    ("create: NULL start", "select allocator.create_booking({a}, 2, NULL)", "RA001"),
    (
        "create: end before start",
        "select allocator.create_booking({a}, 2, now() + interval '1 day', -60)",
        "RA001",
    ),
    (
        "create: in the past",
        "select allocator.create_booking({a}, 2, now() - interval '1 day')",
        "RA001",
    ),
    (
        "create: unknown actor role",
        "select allocator.create_booking({a}, 2, now() + interval '1 day', p_actor => 'root')",
        "RA001",
    ),
    (
        "create: empty key",
        "select allocator.create_booking({a}, 2, now() + interval '1 day', p_idempotency_key => ' ')",
        "RA001",
    ),
    (
        "modify: NULL booking",
        "select allocator.modify_booking(NULL, 1, p_party_size => 3)",
        "RA001",
    ),
    (
        "modify: unknown booking",
        "select allocator.modify_booking(-1, 1, p_party_size => 3)",
        "RA002",
    ),
    (
        "modify: NULL version",
        "select allocator.modify_booking({booking}, NULL, p_party_size => 3)",
        "RA001",
    ),
    (
        "modify: stale version",
        "select allocator.modify_booking({booking}, 99, p_party_size => 3)",
        "RA004",
    ),
    (
        "modify: party 0",
        "select allocator.modify_booking({booking}, 1, p_party_size => 0)",
        "RA001",
    ),
    ("modify: nothing", "select allocator.modify_booking({booking}, 1)", "RA001"),
    ("cancel: unknown booking", "select allocator.cancel_booking(-1)", "RA002"),
    ("cancel: stale version", "select allocator.cancel_booking({booking}, 99)", "RA004"),
    (
        "cancel: unknown actor",
        "select allocator.cancel_booking({booking}, p_actor => 'nobody')",
        "RA001",
    ),
    (
        "hold: unknown booking",
        "select allocator.hold_tables(-1, array[{table_a2}]::bigint[])",
        "RA002",
    ),
    (
        "hold: TTL 0",
        "select allocator.hold_tables({booking}, array[{table_a2}]::bigint[], 0)",
        "RA001",
    ),
    (
        "hold: TTL negative",
        "select allocator.hold_tables({booking}, array[{table_a2}]::bigint[], -1)",
        "RA001",
    ),
    ("hold: NULL tables", "select allocator.hold_tables({booking}, NULL)", "RA001"),
    (
        "hold: NULL in tables",
        "select allocator.hold_tables({booking}, array[NULL]::bigint[])",
        "RA001",
    ),
    (
        "hold: unknown table",
        "select allocator.hold_tables({booking}, array[-5]::bigint[])",
        "RA002",
    ),
    (
        "hold: other restaurant's table",
        "select allocator.hold_tables({booking}, array[{table_b}]::bigint[])",
        "RA007",
    ),
    (
        "hold: taken table",
        "select allocator.hold_tables({booking}, array[{table_a}]::bigint[])",
        "RA003",
    ),
    (
        "hold: already holding",
        "select allocator.hold_tables({held}, array[{table_a2}]::bigint[])",
        "RA005",
    ),
    ("confirm: NULL hold", "select allocator.confirm_hold(NULL)", "RA001"),
    ("confirm: unknown hold", "select allocator.confirm_hold(-1)", "RA002"),
    ("confirm: unknown actor", "select allocator.confirm_hold({hold}, 'ghost')", "RA001"),
    ("release: unknown hold", "select allocator.release_hold(-1)", "RA002"),
    ("expire: limit 0", "select allocator.expire_holds(0)", "RA001"),
    ("requeue: not staff", "select allocator.requeue({booking}, 'app', 'why')", "RA009"),
    ("requeue: no reason", "select allocator.requeue({booking}, 'staff:x', NULL)", "RA001"),
    ("requeue: not in review", "select allocator.requeue({booking}, 'staff:x', 'why')", "RA005"),
    (
        "force_confirm: not staff",
        "select allocator.force_confirm({booking}, 'worker', 'why')",
        "RA009",
    ),
    (
        "manual_assign: NULL tables",
        "select allocator.manual_assign({booking}, NULL, 'staff:x', 'why')",
        "RA001",
    ),
    (
        "manual_assign: other restaurant",
        "select allocator.manual_assign({booking}, array[{table_b}]::bigint[], 'staff:x', 'why')",
        "RA007",
    ),
    ("history: unknown booking", "select count(*) from allocator.booking_history(-1)", "RA002"),
    ("attempts: unknown booking", "select count(*) from allocator.booking_attempts(-1)", "RA002"),
    (
        "transition: unknown state",
        "select allocator.transition({booking}, 1, 'eaten', 'app')",
        "RA005",
    ),
    ("optimize_day: NULL date", "select allocator.optimize_day({a}, NULL)", "RA001"),
    (
        "optimize_day: unknown restaurant",
        "select allocator.optimize_day(-1, current_date)",
        "RA002",
    ),
    ("optimize_day: time limit 0", "select allocator.optimize_day({a}, current_date, 0)", "RA001"),
    ("replan_day: unknown restaurant", "select allocator.replan_day(-1, current_date)", "RA002"),
    ("nightly_optimize: unknown restaurant", "select allocator.nightly_optimize(-1)", "RA002"),
    ("run_due: limit 0", "select allocator.run_due(0)", "RA001"),
    ("run_one: blank worker", "select allocator.run_one('')", "RA001"),
    ("sweep: limit 0", "call allocator.sweep(0)", "RA001"),
    ("sweep: blank worker", "call allocator.sweep(5, '')", "RA001"),
    (
        "update_settings: pooling cut-off not a time",
        """select allocator.update_settings({a}, '{{"pooling": {{"cutoff": "25:61"}}}}')""",
        "RA006",
    ),
    (
        "update_settings: pooling fallback 0",
        """select allocator.update_settings({a}, '{{"pooling": {{"fallback_minutes": 0}}}}')""",
        "RA006",
    ),
]


@pytest.mark.parametrize(
    ("sql", "expected"), [(c[1], c[2]) for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS]
)
def test_bad_call_is_refused_and_writes_nothing(
    db_url: str, world: dict[str, int], sql: str, expected: str
) -> None:
    statement = sql.format(a=world["Fuzz A"], **world)
    with psycopg.connect(db_url, autocommit=True) as conn:
        before = fingerprint(conn)
        with pytest.raises(psycopg.Error) as excinfo:
            conn.execute(statement)
        after = fingerprint(conn)
    assert excinfo.value.sqlstate == expected, excinfo.value
    assert after == before


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    party=st.one_of(st.none(), st.integers(min_value=-(2**31), max_value=2**31 - 1)),
    offset_hours=st.one_of(st.none(), st.integers(min_value=-(10**6), max_value=10**6)),
    duration=st.one_of(st.none(), st.integers(min_value=-(2**31), max_value=2**31 - 1)),
    actor=st.sampled_from(["app", "staff:x", "", "root", "worker:1", None]),
)
def test_random_create_arguments_give_only_documented_errors(
    db_url: str,
    world: dict[str, int],
    party: int | None,
    offset_hours: int | None,
    duration: int | None,
    actor: str | None,
) -> None:
    with psycopg.connect(db_url) as conn:
        before = fingerprint(conn)
        try:
            conn.execute(
                "select allocator.create_booking(%s, %s, now() + %s * interval '1 hour', %s, p_actor => %s)",
                (world["Fuzz A"], party, offset_hours, duration, actor),
            )
        except psycopg.Error as exc:
            assert exc.sqlstate in DOCUMENTED, exc
            conn.rollback()
            assert fingerprint(conn) == before
        else:
            conn.rollback()


# Any character a client can send: not NUL (PostgreSQL text cannot hold it), not a lone
# surrogate (not encodable as UTF-8, so the driver refuses it before the server sees it).
SAFE_CHARS = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
INT4 = st.one_of(
    st.none(),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.sampled_from([0, 1, 2, 4, 100]),
)
TEXT = st.one_of(
    st.none(),
    st.text(alphabet=SAFE_CHARS, max_size=20),
    st.sampled_from(["app", "staff:x", "worker:w", "", "robot"]),
)
STAMP = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(1970, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.just(UTC),
    ),
)
ID_ARRAY = st.one_of(st.none(), st.lists(st.one_of(st.none(), st.integers(-5, 2**40)), max_size=4))


def ids(world: dict[str, int]) -> st.SearchStrategy[int | None]:
    known = [
        world[k]
        for k in ("Fuzz A", "Fuzz B", "booking", "held", "hold", "table_a", "table_a2", "table_b")
    ]
    return st.one_of(
        st.none(), st.sampled_from(known), st.integers(min_value=-(2**62), max_value=2**62)
    )


# Every function the grant list lets application code or operators call is fuzzed, with its
# argument types read from the catalog; these are left out, each for its reason.
NOT_FUZZED = {
    "now": "the clock views and defaults call; takes no argument",
    "clock_override": "parses a superuser session's clock setting; refuses every other caller",
    "tenant_allows": "the predicate of the tenancy policies: every bigint gets a boolean",
    "sweep": "a procedure that commits after each booking (tests/py/test_schedule.py)",
}


def rpcs_to_fuzz(listed: Grants) -> list[str]:
    """The functions of the grant list that application code or operators may call."""
    return sorted(
        name
        for name, roles in listed.execute.items()
        if {"allocator_app", "allocator_ops"} & set(roles) and name not in NOT_FUZZED
    )


RPCS = rpcs_to_fuzz(grants())


def signatures(conn: psycopg.Connection[Any], rpc: str) -> list[list[str]]:
    """The input argument types of each overload of allocator.<rpc>, from the catalog."""
    rows = conn.execute(
        """select array(select pg_catalog.format_type(t, null)
                          from unnest(p.proargtypes) with ordinality a(t, n) order by n)
             from pg_proc p
            where p.pronamespace = 'allocator'::regnamespace and p.proname = %s and p.prokind = 'f'
            order by p.oid""",
        (rpc,),
    ).fetchall()
    return [list(row[0]) for row in rows]


def argument(kind: str, world: dict[str, int]) -> st.SearchStrategy[Any]:
    return {
        "bigint": ids(world),
        "integer": INT4,
        "text": TEXT,
        "timestamp with time zone": STAMP,
        "numeric": st.one_of(st.none(), st.decimals(-1000, 1000, allow_nan=False, places=3)),
        "date": st.one_of(st.none(), st.dates(date(1900, 1, 1), date(2200, 12, 31))),
        "bigint[]": ID_ARRAY,
        "jsonb": st.one_of(
            st.none(),
            st.recursive(
                st.none() | st.booleans() | st.integers(-5, 500) | st.text(SAFE_CHARS, max_size=5),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(
                        st.sampled_from(["flags", "retry", "shadow", "buffer_minutes", "x"]),
                        inner,
                        max_size=3,
                    )
                ),
                max_leaves=6,
            ).map(Json),
        ),
    }[kind]


def test_every_rpc_of_the_grant_list_is_fuzzed_or_excused() -> None:
    listed = set(grants().execute)
    assert set(NOT_FUZZED) <= listed, "an excuse for a function the grant list no longer has"
    assert {"create_booking", "process_booking", "requeue", "optimize_day"} <= set(RPCS)


@pytest.mark.parametrize("rpc", RPCS)
def test_fuzzed_arguments_give_only_documented_errors_and_write_nothing(
    db_url: str, world: dict[str, int], rpc: str
) -> None:
    with psycopg.connect(db_url) as conn:
        overloads = signatures(conn, rpc)
    assert overloads, f"allocator.{rpc} is in the grant list but not in the catalog"
    for kinds in overloads:
        fuzz_one(db_url, world, rpc, kinds)


def fuzz_one(db_url: str, world: dict[str, int], rpc: str, kinds: list[str]) -> None:
    placeholders = ", ".join(f"%s::{kind}" for kind in kinds)
    sql = f"select allocator.{rpc}({placeholders})"
    seen: dict[str, int] = {}

    def call(args: tuple[Any, ...]) -> None:
        with psycopg.connect(db_url) as conn:
            before = fingerprint(conn)
            try:
                conn.execute(sql, args)
            except psycopg.Error as exc:
                seen[exc.sqlstate or "?"] = seen.get(exc.sqlstate or "?", 0) + 1
                assert exc.sqlstate in DOCUMENTED, f"{rpc}{args}: {exc.sqlstate} {exc}"
                conn.rollback()
                assert fingerprint(conn) == before
            else:
                seen["ok"] = seen.get("ok", 0) + 1
            conn.rollback()  # whatever succeeded is not kept: the shared fixture stays as it is

    if not kinds:
        call(())
        assert seen == {"ok": 1}
        return

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.tuples(*(argument(kind, world) for kind in kinds)))
    def check(args: tuple[Any, ...]) -> None:
        call(args)

    check()
    assert sum(seen.values()) >= 40
