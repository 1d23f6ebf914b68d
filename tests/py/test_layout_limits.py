"""The layout caps (docs/schema.md, "Layout limits") hold on every path that changes a layout:
allocator.import_layout, direct writes to tables and table_adjacency, settings updates of
max_combination_size and the combination refresh. A refusal carries its project SQLSTATE and
leaves the layout as it was; a layout at the caps is accepted. Every statement runs under a
statement timeout, so that a cap that no longer holds fails the test instead of hanging it."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from bench.layout_limits import (
    connected_sets,
    full_mesh,
    grid_block,
    grid_layout,
    king_block,
    layout,
    layout_at_caps,
)

LIMITS = {
    "tables_per_restaurant": 200,
    "neighbours_per_table": 8,
    "combination_size": 6,
    "combinations_per_restaurant": 10_000,
    "scored_candidates": 500,
}


@pytest.fixture
def lconn(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    conn.execute("set statement_timeout = '20s'")
    return conn


def sqlstate(conn: psycopg.Connection[Any], sql: str, *params: Any) -> str:
    """Run ``sql`` in a savepoint: "ok", or the SQLSTATE it raised (the savepoint is undone)."""
    try:
        with conn.transaction():
            conn.execute(sql, params or None)
    except psycopg.Error as exc:
        return exc.sqlstate or "?"
    return "ok"


def load(conn: psycopg.Connection[Any], doc: dict[str, Any]) -> dict[str, Any]:
    row = conn.execute("select allocator.import_layout(%s::jsonb)", (json.dumps(doc),)).fetchone()
    assert row is not None
    result: dict[str, Any] = row[0]
    return result


def counts(conn: psycopg.Connection[Any], restaurant_id: int | None = None) -> tuple[Any, ...]:
    row = conn.execute(
        """select (select count(*) from allocator.restaurants r where %(r)s::bigint is null or r.id = %(r)s),
                  (select count(*) from allocator.tables t where %(r)s::bigint is null or t.restaurant_id = %(r)s),
                  (select count(*) from allocator.table_adjacency a where %(r)s::bigint is null or a.restaurant_id = %(r)s),
                  (select count(*) from allocator.table_combinations c where %(r)s::bigint is null or c.restaurant_id = %(r)s),
                  (select string_agg(settings::text, '' order by id) from allocator.restaurants r where %(r)s::bigint is null or r.id = %(r)s)""",
        {"r": restaurant_id},
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_the_limits_are_the_documented_ones(lconn: psycopg.Connection[Any]) -> None:
    row = lconn.execute("select allocator.limits()").fetchone()
    assert row is not None
    assert {k: row[0][k] for k in LIMITS} == LIMITS


def test_a_layout_at_the_caps_is_accepted(lconn: psycopg.Connection[Any]) -> None:
    doc = layout_at_caps()
    result = load(lconn, doc)
    assert result["tables"] == LIMITS["tables_per_restaurant"]
    assert result["combinations"] == connected_sets(doc)
    assert 9_900 < result["combinations"] <= LIMITS["combinations_per_restaurant"]
    row = lconn.execute(
        """select max(neighbours), (select (settings ->> 'max_combination_size')::int
                                      from allocator.restaurants where id = %(r)s),
                  (select max(table_count) from allocator.table_combinations where restaurant_id = %(r)s)
             from allocator.table_overview where restaurant_id = %(r)s""",
        {"r": result["restaurant_id"]},
    ).fetchone()
    assert row == (LIMITS["neighbours_per_table"], LIMITS["combination_size"], 6)


def test_more_tables_than_the_cap_are_refused_on_import(lconn: psycopg.Connection[Any]) -> None:
    before = counts(lconn)
    doc = layout("Too many", [grid_block("T", 201, 1)], combination_size=2)
    assert sqlstate(lconn, "select allocator.import_layout(%s::jsonb)", json.dumps(doc)) == "RA012"
    assert counts(lconn) == before


def test_a_table_beyond_the_cap_is_refused_on_insert(lconn: psycopg.Connection[Any]) -> None:
    rid = load(lconn, layout("Full", [grid_block("T", 200, 1)], combination_size=2))[
        "restaurant_id"
    ]
    before = counts(lconn, rid)
    insert = "insert into allocator.tables (restaurant_id, label, max_capacity) values (%s, %s, 4)"
    assert sqlstate(lconn, insert, rid, "One more") == "RA012"
    # Several rows in one statement are counted together.
    many = """insert into allocator.tables (restaurant_id, label, max_capacity)
              select %s, 'X' || i, 4 from generate_series(1, 2) i"""
    lconn.execute(
        "delete from allocator.tables where restaurant_id = %s and label = 'T199.0'", (rid,)
    )
    assert sqlstate(lconn, many, rid) == "RA012"
    assert sqlstate(lconn, insert, rid, "Back in") == "ok"
    assert counts(lconn, rid)[1] == before[1]


def test_a_ninth_neighbour_is_refused(lconn: psycopg.Connection[Any]) -> None:
    before = counts(lconn)
    star = [(["Hub"] + [f"L{i}" for i in range(9)], [("Hub", f"L{i}") for i in range(9)])]
    doc = layout("Star", star, combination_size=2)
    assert sqlstate(lconn, "select allocator.import_layout(%s::jsonb)", json.dumps(doc)) == "RA012"
    assert counts(lconn) == before

    # Eight neighbours are fine; a ninth written directly is refused, in either column, and
    # so is an update that moves a pair onto the full table.
    labels = [*star[0][0], "L9"]
    doc = layout("Star", [(labels, [*star[0][1][:8], ("L8", "L9")])], combination_size=2)
    rid = load(lconn, doc)["restaurant_id"]
    before = counts(lconn, rid)
    ids = dict(
        lconn.execute(
            "select label, id from allocator.tables where restaurant_id = %s", (rid,)
        ).fetchall()
    )
    insert = "insert into allocator.table_adjacency (restaurant_id, table_a, table_b) values (%s, %s, %s)"
    assert sqlstate(lconn, insert, rid, ids["Hub"], ids["L9"]) == "RA012"
    assert sqlstate(lconn, insert, rid, ids["L9"], ids["Hub"]) == "RA012"
    update = """update allocator.table_adjacency set table_a = %s
                 where restaurant_id = %s and table_a = %s and table_b = %s"""
    assert sqlstate(lconn, update, ids["Hub"], rid, ids["L8"], ids["L9"]) == "RA012"
    assert counts(lconn, rid) == before


def test_a_dense_layout_is_refused_quickly(lconn: psycopg.Connection[Any]) -> None:
    """100 tables all adjacent to each other took 13.6 s to import (166,650 combinations)."""
    before = counts(lconn)
    lconn.execute("set statement_timeout = '5s'")
    doc = full_mesh("Mesh", 100)
    assert sqlstate(lconn, "select allocator.import_layout(%s::jsonb)", json.dumps(doc)) == "RA012"
    assert counts(lconn) == before


def test_too_many_combinations_are_refused_on_import(lconn: psycopg.Connection[Any]) -> None:
    before = counts(lconn)
    lconn.execute("set statement_timeout = '5s'")
    doc = grid_layout("Grid", 10, 10, combination_size=6)  # 18,789 combinations
    assert connected_sets(doc) > LIMITS["combinations_per_restaurant"]
    assert sqlstate(lconn, "select allocator.import_layout(%s::jsonb)", json.dumps(doc)) == "RA012"
    assert counts(lconn) == before


def test_raising_the_combination_size_past_the_cap_is_refused(
    lconn: psycopg.Connection[Any],
) -> None:
    rid = load(lconn, grid_layout("Grid", 10, 10, combination_size=5))["restaurant_id"]
    before = counts(lconn, rid)
    assert before[3] == 6_133
    lconn.execute("set statement_timeout = '5s'")
    patch = "select allocator.update_settings(%s, '{\"max_combination_size\": 6}')"
    assert sqlstate(lconn, patch, rid) == "RA006"
    update = """update allocator.restaurants set settings = settings || '{"max_combination_size": 6}'
                 where id = %s"""
    assert sqlstate(lconn, update, rid) == "RA006"
    too_big = "select allocator.update_settings(%s, '{\"max_combination_size\": 7}')"
    assert sqlstate(lconn, too_big, rid) == "RA006"
    assert counts(lconn, rid) == before
    # Lowering it is always possible.
    lower = "select allocator.update_settings(%s, '{\"max_combination_size\": 2}')"
    assert sqlstate(lconn, lower, rid) == "ok"
    assert counts(lconn, rid)[3] == 180


def test_adjacency_past_the_combination_cap_is_refused(lconn: psycopg.Connection[Any]) -> None:
    rid = load(lconn, grid_layout("Grid", 10, 10, combination_size=5))["restaurant_id"]
    before = counts(lconn, rid)
    lconn.execute("set statement_timeout = '5s'")
    # The corners of every square: each table gets at most 8 neighbours, but sets of 5 tables
    # joined at sides and corners are far more than the cap.
    corners = """insert into allocator.table_adjacency (restaurant_id, table_a, table_b)
                 select a.restaurant_id, a.id, b.id
                   from allocator.tables a join allocator.tables b
                     on b.restaurant_id = a.restaurant_id
                    and split_part(b.label, '.', 1) = 'T' || (substr(split_part(a.label, '.', 1), 2)::int + 1)
                    and abs(split_part(b.label, '.', 2)::int - split_part(a.label, '.', 2)::int) = 1
                  where a.restaurant_id = %s"""
    assert sqlstate(lconn, corners, rid) == "RA012"
    assert counts(lconn, rid) == before


def test_making_tables_combinable_past_the_cap_is_refused(lconn: psycopg.Connection[Any]) -> None:
    doc = layout("Corners", [king_block("T", 10, 10)], combination_size=5, combinable=False)
    rid = load(lconn, doc)["restaurant_id"]
    before = counts(lconn, rid)
    assert before[3] == 0
    lconn.execute("set statement_timeout = '5s'")
    update = "update allocator.tables set combinable = true where restaurant_id = %s"
    assert sqlstate(lconn, update, rid) == "RA012"
    assert counts(lconn, rid) == before


def test_candidate_scoring_is_bounded(lconn: psycopg.Connection[Any]) -> None:
    rid = load(lconn, layout_at_caps())["restaurant_id"]
    row = lconn.execute(
        """select (allocator.create_booking(%s, 12, allocator.now() + interval '1 day', 120)
                   ->> 'booking_id')::bigint""",
        (rid,),
    ).fetchone()
    assert row is not None
    booking = row[0]
    fitting = lconn.execute(
        """select count(*) from allocator.table_combinations
            where restaurant_id = %s and 12 between min_capacity and max_capacity""",
        (rid,),
    ).fetchone()
    assert fitting is not None and fitting[0] > LIMITS["scored_candidates"]
    scored = lconn.execute(
        """select count(*), min(max_capacity), bool_and(max_capacity <= 16)
             from allocator.candidates((select b from allocator.bookings b where b.id = %s))""",
        (booking,),
    ).fetchone()
    # The fewest seats come first: the tightest plans are the ones scored.
    assert scored == (LIMITS["scored_candidates"], 12, True)
    plans = lconn.execute("select * from allocator.plan_booking(%s)", (booking,)).fetchall()
    assert len(plans) == 5
