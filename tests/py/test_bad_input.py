"""Bad input to every RPC gets the documented SQLSTATE and writes nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
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
    ("nightly_sweep: limit 0", "call allocator.nightly_sweep(0)", "RA001"),
    ("run_nightly: unknown restaurant", "select allocator.run_nightly(-1)", "RA002"),
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
    # Sizes (docs/reliability.md, "Input limits"): text and jsonb a caller sends are bounded.
    (
        "create: actor of 10 MB",
        "select allocator.create_booking({a}, 2, now() + interval '1 day', p_actor => 'app:' || repeat('x', 10000000))",
        "RA001",
    ),
    (
        "create: actor of 257 characters",
        "select allocator.create_booking({a}, 2, now() + interval '1 day', p_actor => 'app:' || repeat('x', 253))",
        "RA001",
    ),
    (
        "create: metadata of 50 MB",
        "select allocator.create_booking({a}, 2, now() + interval '1 day', p_metadata => jsonb_build_object('note', repeat('x', 50000000)))",
        "RA001",
    ),
    (
        "create: metadata of 16 kB and a byte",
        "select allocator.create_booking({a}, 2, now() + interval '1 day', p_metadata => jsonb_build_object('n', repeat('x', 16384 - 8)))",
        "RA001",
    ),
    (
        "create: idempotency key of 201 characters",
        "select allocator.create_booking({a}, 2, now() + interval '1 day', p_idempotency_key => repeat('k', 201))",
        "RA001",
    ),
    (
        "create: preferred zone of 10,000 characters",
        "select allocator.create_booking({a}, 2, now() + interval '1 day', p_preferred_zone => repeat('z', 10000))",
        "RA001",
    ),
    (
        "modify: reason of 50 MB",
        "select allocator.modify_booking({booking}, 1, p_party_size => 3, p_reason => repeat('x', 50000000))",
        "RA001",
    ),
    (
        "modify: actor of 257 characters",
        "select allocator.modify_booking({booking}, 1, p_party_size => 3, p_actor => 'app:' || repeat('x', 253))",
        "RA001",
    ),
    (
        "cancel: reason of 2,001 characters",
        "select allocator.cancel_booking({booking}, p_reason => repeat('x', 2001))",
        "RA001",
    ),
    (
        "hold: actor of 257 characters",
        "select allocator.hold_tables({booking}, array[{table_a2}]::bigint[], p_actor => 'app:' || repeat('x', 253))",
        "RA001",
    ),
    (
        "hold: idempotency key of 201 characters",
        "select allocator.hold_tables({booking}, array[{table_a2}]::bigint[], p_idempotency_key => repeat('k', 201))",
        "RA001",
    ),
    (
        "confirm: actor of 257 characters",
        "select allocator.confirm_hold({hold}, 'app:' || repeat('x', 253))",
        "RA001",
    ),
    (
        "release: reason of 2,001 characters",
        "select allocator.release_hold({hold}, 'app', repeat('x', 2001))",
        "RA001",
    ),
    (
        "requeue: reason of 2,001 characters",
        "select allocator.requeue({booking}, 'staff:x', repeat('x', 2001))",
        "RA001",
    ),
    (
        "requeue: staff actor of 257 characters",
        "select allocator.requeue({booking}, 'staff:' || repeat('x', 251), 'why')",
        "RA001",
    ),
    (
        "decline: reason of 2,001 characters",
        "select allocator.decline_booking({booking}, 'staff:x', repeat('x', 2001))",
        "RA001",
    ),
    (
        "force_confirm: reason of 2,001 characters",
        "select allocator.force_confirm({held}, 'staff:x', repeat('x', 2001))",
        "RA001",
    ),
    (
        "manual_assign: reason of 2,001 characters",
        "select allocator.manual_assign({booking}, array[{table_a2}]::bigint[], 'staff:x', repeat('x', 2001))",
        "RA001",
    ),
    (
        "import_bookings: actor of 257 characters",
        "select allocator.import_bookings({a}, '[]', 'staff:' || repeat('x', 251))",
        "RA001",
    ),
    (
        "import_bookings: rows of more than 10 MB",
        "select allocator.import_bookings({a}, jsonb_build_array(jsonb_build_object('external_id', 'big', 'party_size', 2, 'start', (now() + interval '1 day')::text, 'metadata', jsonb_build_object('x', repeat('x', 10485760)))))",
        "RA001",
    ),
    (
        "claim_due: worker of 201 characters",
        "select allocator.claim_due(repeat('w', 201))",
        "RA001",
    ),
    ("run_one: worker of 201 characters", "select allocator.run_one(repeat('w', 201))", "RA001"),
    ("run_due: worker of 201 characters", "select allocator.run_due(5, repeat('w', 201))", "RA001"),
    (
        "release_claims: worker of 201 characters",
        "select allocator.release_claims(repeat('w', 201))",
        "RA001",
    ),
    (
        "process_booking: worker of 201 characters",
        "select allocator.process_booking({booking}, repeat('w', 201))",
        "RA001",
    ),
    (
        "lease_acquire: name of 201 characters",
        "select allocator.lease_acquire(repeat('l', 201), 'me')",
        "RA001",
    ),
    (
        "lease_acquire: owner of 10 MB",
        "select allocator.lease_acquire('fuzz', repeat('o', 10000000))",
        "RA001",
    ),
    (
        "lease_extend: name of 201 characters",
        "select allocator.lease_extend(repeat('l', 201), 'me')",
        "RA001",
    ),
    (
        "lease_release: owner of 201 characters",
        "select allocator.lease_release('fuzz', repeat('o', 201))",
        "RA001",
    ),
    (
        "read_events: subscriber of 201 characters",
        "select count(*) from allocator.read_events(repeat('s', 201))",
        "RA001",
    ),
    (
        "update_settings: patch of 50 MB",
        "select allocator.update_settings({a}, jsonb_build_object('preferred_zone', repeat('z', 50000000)))",
        "RA001",
    ),
    (
        "update_settings: patch of many keys",
        "select allocator.update_settings({a}, (select jsonb_object_agg('k' || i, i) from generate_series(1, 3000) i))",
        "RA001",
    ),
    (
        "update_settings: preferred zone of 201 characters",
        "select allocator.update_settings({a}, jsonb_build_object('preferred_zone', repeat('z', 201)))",
        "RA006",
    ),
    (
        "apply_optimal_assignment: actor of 257 characters",
        "select allocator.apply_optimal_assignment({a}, current_date, jsonb_build_object('restaurant_id', {a}, 'date', current_date, 'moves', '[]'::jsonb, 'seat', '[]'::jsonb, 'improvement', 0), 0, 'optimizer:' || repeat('x', 247))",
        "RA001",
    ),
    (
        "apply_optimal_assignment: plan of 50 MB",
        "select allocator.apply_optimal_assignment({a}, current_date, jsonb_build_object('restaurant_id', {a}, 'date', current_date, 'moves', '[]'::jsonb, 'seat', '[]'::jsonb, 'improvement', 0, 'x', repeat('x', 50000000)), 0)",
        "RA001",
    ),
    # Shapes: multi-dimensional arrays, jsonb of the wrong type, numbers out of range.
    (
        "hold: 2-D table array",
        "select allocator.hold_tables({booking}, array[array[{table_a2}], array[{table_a}]])",
        "RA001",
    ),
    (
        "hold: 2-D table array of one table",
        "select allocator.hold_tables({booking}, array[array[{table_a2}]])",
        "RA001",
    ),
    (
        "hold: 100,000 tables",
        "select allocator.hold_tables({booking}, array(select generate_series(1, 100000))::bigint[])",
        "RA001",
    ),
    (
        "force_confirm: 2-D table array",
        "select allocator.force_confirm({booking}, 'staff:x', 'why', array[array[{table_a2}]])",
        "RA001",
    ),
    (
        "manual_assign: 2-D table array",
        "select allocator.manual_assign({booking}, array[array[{table_a2}]], 'staff:x', 'why')",
        "RA001",
    ),
    (
        "apply_optimal_assignment: restaurant id not a number",
        "select allocator.apply_optimal_assignment({a}, current_date, jsonb_build_object('restaurant_id', 'abc', 'date', current_date, 'moves', '[]'::jsonb, 'seat', '[]'::jsonb))",
        "RA001",
    ),
    (
        "apply_optimal_assignment: date not a date",
        "select allocator.apply_optimal_assignment({a}, current_date, jsonb_build_object('restaurant_id', {a}, 'date', '2026-13-45', 'moves', '[]'::jsonb, 'seat', '[]'::jsonb))",
        "RA001",
    ),
    (
        "apply_optimal_assignment: improvement a string",
        "select allocator.apply_optimal_assignment({a}, current_date, jsonb_build_object('restaurant_id', {a}, 'date', current_date, 'moves', '[]'::jsonb, 'seat', jsonb_build_array(jsonb_build_object('booking_id', {booking}, 'version', 1, 'to', jsonb_build_array({table_a2}))), 'improvement', 'lots'))",
        "RA001",
    ),
    (
        "apply_optimal_assignment: booking id 1e30",
        "select allocator.apply_optimal_assignment({a}, current_date, jsonb_build_object('restaurant_id', {a}, 'date', current_date, 'moves', '[]'::jsonb, 'seat', jsonb_build_array(jsonb_build_object('booking_id', 1e30, 'version', 1, 'to', jsonb_build_array({table_a2}))), 'improvement', 1), 0)",
        "RA001",
    ),
    (
        "apply_optimal_assignment: seat entry not an object",
        "select allocator.apply_optimal_assignment({a}, current_date, jsonb_build_object('restaurant_id', {a}, 'date', current_date, 'moves', '[]'::jsonb, 'seat', '[5]'::jsonb, 'improvement', 1), 0)",
        "RA001",
    ),
    (
        "apply_optimal_assignment: table id an object",
        "select allocator.apply_optimal_assignment({a}, current_date, jsonb_build_object('restaurant_id', {a}, 'date', current_date, 'moves', '[]'::jsonb, 'seat', jsonb_build_array(jsonb_build_object('booking_id', {booking}, 'version', 1, 'to', '[{{\"x\": 1}}]'::jsonb)), 'improvement', 1), 0)",
        "RA001",
    ),
    (
        "apply_optimal_assignment: another restaurant's table",
        "select allocator.apply_optimal_assignment({a}, current_date, jsonb_build_object('restaurant_id', {a}, 'date', current_date, 'moves', '[]'::jsonb, 'seat', jsonb_build_array(jsonb_build_object('booking_id', {booking}, 'version', 1, 'to', jsonb_build_array({table_b}))), 'improvement', 1), 0)",
        "RA001",
    ),
    # import_layout (run by the CLI as the schema owner): every malformed document is refused.
    (
        "layout: max_capacity 99999999999",
        """select allocator.import_layout('{{"name": "L", "tables": [{{"label": "A", "max_capacity": 99999999999}}]}}')""",
        "RA012",
    ),
    (
        "layout: min_capacity -1e30",
        """select allocator.import_layout('{{"name": "L", "tables": [{{"label": "A", "min_capacity": -1e30, "max_capacity": 4}}]}}')""",
        "RA012",
    ),
    (
        "layout: max_capacity a string",
        """select allocator.import_layout('{{"name": "L", "tables": [{{"label": "A", "max_capacity": "4"}}]}}')""",
        "RA012",
    ),
    (
        "layout: active a number",
        """select allocator.import_layout('{{"name": "L", "tables": [{{"label": "A", "max_capacity": 4, "active": 1}}]}}')""",
        "RA012",
    ),
    (
        "layout: zones an object",
        """select allocator.import_layout('{{"name": "L", "zones": {{"a": 1}}, "tables": [{{"label": "A", "max_capacity": 4}}]}}')""",
        "RA012",
    ),
    (
        "layout: zone name a number",
        """select allocator.import_layout('{{"name": "L", "zones": [{{"name": 5}}], "tables": [{{"label": "A", "max_capacity": 4}}]}}')""",
        "RA012",
    ),
    (
        "layout: table zone a number",
        """select allocator.import_layout('{{"name": "L", "zones": [{{"name": "5"}}], "tables": [{{"label": "A", "zone": 5, "max_capacity": 4}}]}}')""",
        "RA012",
    ),
    (
        "layout: table an array",
        """select allocator.import_layout('{{"name": "L", "tables": [["A", 4]]}}')""",
        "RA012",
    ),
    (
        "layout: label an object",
        """select allocator.import_layout('{{"name": "L", "tables": [{{"label": {{"a": 1}}, "max_capacity": 4}}]}}')""",
        "RA012",
    ),
    (
        "layout: adjacency a scalar",
        """select allocator.import_layout('{{"name": "L", "tables": [{{"label": "A", "max_capacity": 4}}], "adjacency": 5}}')""",
        "RA012",
    ),
    (
        "layout: adjacency entry an object",
        """select allocator.import_layout('{{"name": "L", "tables": [{{"label": "A", "max_capacity": 4}}, {{"label": "B", "max_capacity": 4}}], "adjacency": [{{"a": 1}}]}}')""",
        "RA012",
    ),
    (
        "layout: adjacency entry with a null",
        """select allocator.import_layout('{{"name": "L", "tables": [{{"label": "A", "max_capacity": 4}}, {{"label": "B", "max_capacity": 4}}], "adjacency": [[null, "B"]]}}')""",
        "RA012",
    ),
    (
        "layout: adjacency entry null",
        """select allocator.import_layout('{{"name": "L", "tables": [{{"label": "A", "max_capacity": 4}}, {{"label": "B", "max_capacity": 4}}], "adjacency": [["A", "B"], null]}}')""",
        "RA012",
    ),
    (
        "layout: adjacency entry of numbers",
        """select allocator.import_layout('{{"name": "L", "tables": [{{"label": "1", "max_capacity": 4}}, {{"label": "2", "max_capacity": 4}}], "adjacency": [[1, 2]]}}')""",
        "RA012",
    ),
    (
        "layout: name an array",
        """select allocator.import_layout('{{"name": ["L"], "tables": [{{"label": "A", "max_capacity": 4}}]}}')""",
        "RA001",
    ),
    (
        "layout: name of 201 characters",
        """select allocator.import_layout(jsonb_build_object('name', repeat('n', 201), 'tables', '[{{"label": "A", "max_capacity": 4}}]'::jsonb))""",
        "RA001",
    ),
    (
        "layout: zone name of 201 characters",
        """select allocator.import_layout(jsonb_build_object('name', 'L', 'zones', jsonb_build_array(jsonb_build_object('name', repeat('z', 201))), 'tables', '[{{"label": "A", "max_capacity": 4}}]'::jsonb))""",
        "RA001",
    ),
    (
        "layout: label of 201 characters",
        """select allocator.import_layout(jsonb_build_object('name', 'L', 'tables', jsonb_build_array(jsonb_build_object('label', repeat('t', 201), 'max_capacity', 4))))""",
        "RA001",
    ),
    (
        "layout: document of 2 MB",
        """select allocator.import_layout(jsonb_build_object('name', 'L', 'tables', '[{{"label": "A", "max_capacity": 4}}]'::jsonb, 'note', repeat('x', 2000000)))""",
        "RA001",
    ),
    (
        "layout: time zone of 10,000 characters",
        """select allocator.import_layout(jsonb_build_object('name', 'L', 'timezone', repeat('z', 10000), 'tables', '[{{"label": "A", "max_capacity": 4}}]'::jsonb))""",
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
        conn.execute("set statement_timeout = '60s'")  # a refusal is quick, never a hang
        before = fingerprint(conn)
        with pytest.raises(psycopg.Error) as excinfo:
            conn.execute(statement)
        after = fingerprint(conn)
    assert excinfo.value.sqlstate == expected, excinfo.value
    assert after == before


AT_THE_LIMITS = [
    # (description, SQL with {placeholders}): values exactly at a limit are accepted.
    (
        "create: actor of 256 characters, key of 200, metadata of 16 kB, zone name of 200",
        "select allocator.create_booking({a}, 2, now() + interval '1 day', p_actor => 'app:' || repeat('x', 252), p_idempotency_key => repeat('k', 200), p_metadata => jsonb_build_object('n', repeat('x', 16384 - 9)))",
    ),
    (
        "cancel: reason of 2,000 characters",
        "select allocator.cancel_booking({booking}, p_reason => repeat('x', 2000))",
    ),
    (
        "decline: staff actor of 256 characters, reason of 2,000",
        "select allocator.decline_booking({booking}, 'staff:' || repeat('x', 250), repeat('x', 2000))",
    ),
    ("claim_due: worker of 200 characters", "select allocator.claim_due(repeat('w', 200))"),
    (
        "process_booking: worker of 200 characters",
        "select allocator.process_booking({booking}, repeat('w', 200))",
    ),
    (
        "lease_acquire: name and owner of 200 characters",
        "select allocator.lease_acquire(repeat('l', 200), repeat('o', 200))",
    ),
    (
        "read_events: subscriber of 200 characters",
        "select count(*) from allocator.read_events(repeat('s', 200))",
    ),
    (
        "update_settings: preferred zone of 200 characters",
        "select allocator.update_settings({a}, jsonb_build_object('preferred_zone', repeat('z', 200)))",
    ),
    (
        "layout: names and labels of 200 characters",
        "select allocator.import_layout(jsonb_build_object('name', repeat('n', 200), 'zones', jsonb_build_array(jsonb_build_object('name', repeat('z', 200))), 'tables', jsonb_build_array(jsonb_build_object('label', repeat('t', 200), 'zone', repeat('z', 200), 'max_capacity', 4))))",
    ),
]


@pytest.mark.parametrize("sql", [c[1] for c in AT_THE_LIMITS], ids=[c[0] for c in AT_THE_LIMITS])
def test_values_at_the_limits_are_accepted(db_url: str, world: dict[str, int], sql: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(sql.format(a=world["Fuzz A"], **world))
        conn.rollback()


def test_the_documented_input_limits_are_the_schemas(db_url: str) -> None:
    """docs/reliability.md's table of input limits names every limit with its value."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text()
    section = text[text.index("### Input limits") :]
    documented = {
        m.group(2): int(m.group(1).replace(",", ""))
        for m in re.finditer(r"^\| [^|]+ \| ([\d,]+) \| `(\w+)` \|", section, re.MULTILINE)
    }
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select allocator.limits()").fetchone()
    assert row is not None
    assert documented == row[0]


def test_an_oversized_import_row_is_refused_alone(db_url: str, world: dict[str, int]) -> None:
    """A row over a limit is refused like any bad row, with RA001; the others are imported."""
    rows = [
        {"external_id": "limits-ok", "party_size": 2, "start": "2100-01-01 19:00"},
        {
            "external_id": "limits-metadata",
            "party_size": 2,
            "start": "2100-01-01 20:00",
            "metadata": {"note": "x" * 16_384},
        },
        {
            "external_id": "limits-zone",
            "party_size": 2,
            "start": "2100-01-01 19:30",
            "zone": "z" * 201,
        },
        {"external_id": "limits-start", "party_size": 2, "start": "2" * 201},
        {
            "external_id": "limits-tables",
            "party_size": 2,
            "start": "2100-01-01 21:00",
            "tables": ["t" * 201],
        },
        {
            "external_id": "limits-many-tables",
            "party_size": 2,
            "start": "2100-01-01 22:00",
            "tables": [f"T{i}" for i in range(11)],
        },
    ]
    with psycopg.connect(db_url) as conn:
        conn.execute("select allocator.freeze_clock('2099-12-01 12:00+00')")
        row = conn.execute(
            "select allocator.import_bookings(%s::bigint, %s::jsonb)", (world["Fuzz A"], Json(rows))
        ).fetchone()
        conn.rollback()
    assert row is not None
    result = row[0]
    assert result["imported"] == 1
    refused = {r["external_id"]: r["sqlstate"] for r in result["refused"]}
    assert refused == {r["external_id"]: "RA001" for r in rows[1:]}, result["refused"]


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
# Strings just past the limits of names (200), actors (256) and reasons (2,000), and one of
# 20,000 characters (docs/reliability.md, "Input limits"); longer ones are built in the server
# by the listed bad calls, so the fuzzer sends no megabytes.
LONG_TEXT = st.sampled_from(
    ["n" * 201, "staff:" + "a" * 251, "worker:" + "w" * 250, "r" * 2_001, "t" * 20_000]
)
TEXT = st.one_of(
    st.none(),
    st.text(alphabet=SAFE_CHARS, max_size=20),
    st.sampled_from(["app", "staff:x", "worker:w", "", "robot"]),
    LONG_TEXT,
)
STAMP = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(1970, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.just(UTC),
    ),
)
ID_ARRAY = st.one_of(
    st.none(),
    st.lists(st.one_of(st.none(), st.integers(-5, 2**40)), max_size=4),
    # Two-dimensional arrays (rectangular, as PostgreSQL requires) and long ones.
    st.integers(1, 3).flatmap(
        lambda width: st.lists(
            st.lists(st.integers(-5, 2**40), min_size=width, max_size=width),
            min_size=1,
            max_size=3,
        )
    ),
    st.integers(11, 5_000).map(lambda n: list(range(1, n + 1))),
)
# Weekday lists and the like: in and out of 1-7, repeated, NULLs, two-dimensional.
INT_ARRAY = st.one_of(
    st.none(),
    st.lists(st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1), st.integers(-1, 9)), max_size=9),
    st.integers(1, 3).flatmap(
        lambda width: st.lists(
            st.lists(st.integers(0, 8), min_size=width, max_size=width), min_size=1, max_size=3
        )
    ),
)
TIME = st.one_of(st.none(), st.times())


# Keys the jsonb arguments read: settings, metadata, import rows, layouts, optimizer plans.
JSON_KEYS = st.sampled_from(
    [
        "flags", "retry", "shadow", "buffer_minutes", "max_combination_size", "preferred_zone",
        "turn_minutes", "x", "external_id", "party_size", "start", "tables", "zone",
        "metadata", "restaurant_id", "date", "moves", "seat", "booking_id", "version", "to",
        "improvement", "name", "label", "max_capacity", "adjacency",
    ]
)  # fmt: skip
# JSON of every type at any depth, with numbers out of every integer range and long strings.
JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-5, 500)
    | st.sampled_from([2**31, 2**63, -(2**63) - 1, 10**30, 99_999_999_999, 0.5, -1e300, 1e300])
    | st.text(SAFE_CHARS, max_size=5)
    | LONG_TEXT
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(JSON_KEYS, inner, max_size=4),
    max_leaves=8,
)


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
    "nightly_sweep": "a procedure that commits after each restaurant (tests/py/test_schedule.py)",
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
        "integer[]": INT_ARRAY,
        "time without time zone": TIME,
        "jsonb": st.one_of(st.none(), JSON_VALUE.map(Json)),
        "bytea": st.one_of(st.none(), st.binary(max_size=40)),
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
