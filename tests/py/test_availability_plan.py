"""availability() is one set-based query that uses the indexes, even with 100 restaurants
the size of the sample (3,000 tables and their allocations)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from control import migrate
from tests.conftest import create_database, database_name_for, drop_database

ROOT = Path(__file__).resolve().parents[2]
COPIES = 100


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


@pytest.fixture(scope="module")
def big_db() -> Iterator[str]:
    name = database_name_for("explain")
    url = create_database(name)
    migrate.upgrade("head", url=url)
    layout = json.loads((ROOT / "data" / "sample_restaurant.json").read_text())
    with psycopg.connect(url) as conn:
        for i in range(COPIES):
            layout["name"] = f"Copy {i}"
            conn.execute("select allocator.import_layout(%s::jsonb)", (json.dumps(layout),))
        # Two seatings a day on every table for a week, written set-based.
        conn.execute(
            """insert into allocator.bookings (restaurant_id, party_size, period, state, metadata)
               select t.restaurant_id, t.max_capacity,
                      tstzrange(d + s * interval '3 hours', d + s * interval '3 hours' + interval '2 hours'), 'confirmed',
                      jsonb_build_object('table_id', t.id)
                 from allocator.tables t, generate_series(current_date + 1, current_date + 7, interval '1 day') d,
                      generate_series(6, 7) s"""
        )
        conn.execute(
            """insert into allocator.allocations (restaurant_id, booking_id, table_id, period, kind)
               select b.restaurant_id, b.id, (b.metadata ->> 'table_id')::bigint, b.period, 'confirmed'
                 from allocator.bookings b"""
        )
        conn.commit()
        conn.execute("analyze")
    yield url
    drop_database(name)


def test_availability_uses_indexes_at_scale(big_db: str) -> None:
    with psycopg.connect(big_db) as conn:
        (restaurant_id,) = conn.execute("select min(id) from allocator.restaurants").fetchone()  # type: ignore[misc]
        count = conn.execute("select count(*) from allocator.allocations").fetchone()
        assert count is not None and count[0] > 10_000
        (plan,) = conn.execute(
            "explain (format json) select * from allocator.availability(%s, "
            "tstzrange(current_date + 2 + interval '19 hours', current_date + 2 + interval '21 hours'))",
            (restaurant_id,),
        ).fetchone()  # type: ignore[misc]
        free_at = (
            "select count(*) from allocator.availability(%s, "
            "tstzrange(current_date + 2 + %s * interval '1 hour', current_date + 2 + %s * interval '1 hour'))"
        )
        busy = conn.execute(free_at, (restaurant_id, 19, 21)).fetchone()
        quiet = conn.execute(free_at, (restaurant_id, 14, 16)).fetchone()
    nodes = list(_nodes(plan[0]["Plan"]))
    seq_scans = [n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"]
    assert "allocations" not in seq_scans, seq_scans
    assert "tables" not in seq_scans and "table_combinations" not in seq_scans, seq_scans
    assert "Function Scan" not in {n["Node Type"] for n in nodes}, "availability() is inlined"
    assert busy == (0,), "every table is taken in the evening"
    assert quiet == (30 + 34,), "every table and combination is free in the afternoon"
