"""Layout limits: how long a layout at the caps takes to import, and how quickly layouts beyond
them are refused.

    python bench/layout_limits.py [--runs 5]

The layout at the caps has ``tables_per_restaurant`` tables, tables with
``neighbours_per_table`` neighbours, ``max_combination_size`` set to ``combination_size`` and
just under ``combinations_per_restaurant`` combinations (docs/schema.md, "Layout limits").
Every import runs in a transaction that is rolled back, so the database is left as it was.
It uses ``DATABASE_URL``, else the embedded cluster; the database must be migrated to head.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/layout_limits.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from control.db import database_url

Pair = tuple[str, str]


def king_block(prefix: str, width: int, height: int) -> tuple[list[str], list[Pair]]:
    """A ``width`` x ``height`` block of tables, each adjacent to its 8 surrounding tables
    (sides and corners): an inner table has 8 neighbours."""
    labels = [f"{prefix}{x}.{y}" for x in range(width) for y in range(height)]
    pairs = [
        (f"{prefix}{x}.{y}", f"{prefix}{x + dx}.{y + dy}")
        for x in range(width)
        for y in range(height)
        for dx, dy in ((1, 0), (0, 1), (1, 1), (1, -1))
        if 0 <= x + dx < width and 0 <= y + dy < height
    ]
    return labels, pairs


def grid_block(prefix: str, width: int, height: int) -> tuple[list[str], list[Pair]]:
    """A ``width`` x ``height`` grid of tables, each adjacent to the tables beside it."""
    labels = [f"{prefix}{x}.{y}" for x in range(width) for y in range(height)]
    pairs = [
        (f"{prefix}{x}.{y}", f"{prefix}{x + dx}.{y + dy}")
        for x in range(width)
        for y in range(height)
        for dx, dy in ((1, 0), (0, 1))
        if x + dx < width and y + dy < height
    ]
    return labels, pairs


def layout(
    name: str,
    blocks: Sequence[tuple[list[str], list[Pair]]],
    *,
    combination_size: int,
    combinable: bool = True,
    max_capacity: int = 4,
) -> dict[str, Any]:
    """A layout document for ``allocator.import_layout`` from blocks of tables."""
    return {
        "name": name,
        "timezone": "UTC",
        "settings": {"max_combination_size": combination_size},
        "tables": [
            {"label": label, "max_capacity": max_capacity, "combinable": combinable}
            for labels, _ in blocks
            for label in labels
        ],
        "adjacency": [list(pair) for _, pairs in blocks for pair in pairs],
    }


def layout_at_caps(name: str = "At the caps") -> dict[str, Any]:
    """200 tables, tables with 8 neighbours, combinations of up to 6 tables: two 4x4 and three
    3x3 blocks of tables joined at sides and corners (4,407 and 333 combinations each), and
    47 rows of 3 tables (3 each), 9,954 combinations in all."""
    blocks = [king_block(f"K{i}.", 4, 4) for i in range(2)]
    blocks += [king_block(f"N{i}.", 3, 3) for i in range(3)]
    blocks += [grid_block(f"R{i}.", 3, 1) for i in range(47)]
    return layout(name, blocks, combination_size=6)


def grid_layout(
    name: str, width: int, height: int, *, corners: bool = False, combination_size: int = 3
) -> dict[str, Any]:
    """One block of ``width`` x ``height`` tables, joined at sides (and corners)."""
    block = (king_block if corners else grid_block)("T", width, height)
    return layout(name, [block], combination_size=combination_size)


def full_mesh(name: str, tables: int) -> dict[str, Any]:
    """``tables`` tables, every one adjacent to every other."""
    labels = [f"T{i}" for i in range(tables)]
    pairs = [(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :]]
    return layout(name, [(labels, pairs)], combination_size=3)


def connected_sets(doc: dict[str, Any]) -> int:
    """How many combinations the schema should derive from ``doc`` (connected sets of 2 to
    max_combination_size combinable tables), counted in Python."""
    size = doc["settings"]["max_combination_size"]
    neighbours: dict[str, set[str]] = {t["label"]: set() for t in doc["tables"]}
    for a, b in doc["adjacency"]:
        neighbours[a].add(b)
        neighbours[b].add(a)
    level = {frozenset([label]) for label in neighbours}
    total = 0
    for _ in range(size - 1):
        level = {s | {n} for s in level for m in s for n in neighbours[m] if n not in s}
        total += len(level)
    return total


def import_once(url: str, doc: dict[str, Any]) -> tuple[float, str, dict[str, Any] | None]:
    """Import ``doc`` in a transaction that is rolled back: (seconds, SQLSTATE or "ok", result)."""
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        try:
            row = conn.execute(
                "select allocator.import_layout(%s::jsonb)", (json.dumps(doc),)
            ).fetchone()
        except psycopg.Error as exc:
            return time.perf_counter() - started, exc.sqlstate or "?", None
        finally:
            conn.rollback()
        assert row is not None
        return time.perf_counter() - started, "ok", row[0]


def plan_at_caps(url: str, doc: dict[str, Any], party: int) -> tuple[float, int]:
    """Seconds of ``plan_booking`` for a party at the caps, and how many plans were scored."""
    with psycopg.connect(url) as conn:
        try:
            row = conn.execute(
                "select (allocator.import_layout(%s::jsonb) ->> 'restaurant_id')::bigint",
                (json.dumps(doc),),
            ).fetchone()
            assert row is not None
            booking = conn.execute(
                "select (allocator.create_booking(%s, %s, allocator.now() + interval '1 day', 120)"
                " ->> 'booking_id')::bigint",
                (row[0], party),
            ).fetchone()
            assert booking is not None
            started = time.perf_counter()
            conn.execute("select * from allocator.plan_booking(%s)", (booking[0],)).fetchall()
            seconds = time.perf_counter() - started
            scored = conn.execute(
                "select count(*) from allocator.candidates("
                "(select b from allocator.bookings b where b.id = %s))",
                (booking[0],),
            ).fetchone()
            assert scored is not None
            return seconds, int(scored[0])
        finally:
            conn.rollback()


def raise_combination_size(url: str, doc: dict[str, Any], size: int) -> tuple[float, str]:
    """Import ``doc``, then time ``update_settings`` of max_combination_size to ``size``, in a
    transaction that is rolled back: (seconds, SQLSTATE or "ok")."""
    with psycopg.connect(url) as conn:
        try:
            row = conn.execute(
                "select (allocator.import_layout(%s::jsonb) ->> 'restaurant_id')::bigint",
                (json.dumps(doc),),
            ).fetchone()
            assert row is not None
            started = time.perf_counter()
            try:
                conn.execute(
                    "select allocator.update_settings(%s, %s::jsonb)",
                    (row[0], json.dumps({"max_combination_size": size})),
                )
            except psycopg.Error as exc:
                return time.perf_counter() - started, exc.sqlstate or "?"
            return time.perf_counter() - started, "ok"
        finally:
            conn.rollback()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/layout_limits.py", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="imports of each layout (5)")
    args = parser.parse_args(argv)
    url = database_url()
    with psycopg.connect(url) as conn:
        found = conn.execute("select to_regprocedure('allocator.limits()')").fetchone()
        if found is None or found[0] is None:
            print("allocator.limits() is missing: run `allocator migrate up` first")
            return 2
        row = conn.execute("select allocator.limits()").fetchone()
        assert row is not None
        limits: dict[str, int] = row[0]

    doc = layout_at_caps()
    expected = connected_sets(doc)
    runs = [import_once(url, doc) for _ in range(args.runs)]
    result = runs[0][2]
    if result is None:
        print(f"the layout at the caps was refused: {runs[0][1]}")
        return 1
    degree: dict[str, int] = {}
    for a, b in doc["adjacency"]:
        degree[a] = degree.get(a, 0) + 1
        degree[b] = degree.get(b, 0) + 1
    median = statistics.median(seconds for seconds, _, _ in runs)
    print("limits:", ", ".join(f"{k} {v}" for k, v in sorted(limits.items())))
    print(
        f"layout at the caps: {result['tables']} tables, at most {max(degree.values())} "
        f"neighbours, max_combination_size {doc['settings']['max_combination_size']}, "
        f"{result['combinations']} combinations (expected {expected})"
    )
    print(
        f"import_layout at the caps: median {median:.3f} s of {args.runs} runs "
        f"(min {min(s for s, _, _ in runs):.3f} s, max {max(s for s, _, _ in runs):.3f} s)"
    )
    seconds, scored = plan_at_caps(url, doc, 12)
    print(f"plan_booking for a party of 12 at the caps: {seconds:.3f} s, {scored} plans scored")

    beyond = [
        ("201 tables", layout("201 tables", [grid_block("T", 201, 1)], combination_size=2)),
        ("100 tables, all adjacent", full_mesh("mesh", 100)),
        ("200 tables, all adjacent", full_mesh("mesh", 200)),
        ("10x10 grid, combinations of 6", grid_layout("grid", 10, 10, combination_size=6)),
        (
            "20x10 grid with corners, combinations of 4",
            grid_layout("corners", 20, 10, corners=True, combination_size=4),
        ),
    ]
    refusals: set[str] = set()
    for label, refused in beyond:
        times = [import_once(url, refused) for _ in range(args.runs)]
        states = {state for _, state, _ in times}
        refusals |= states
        print(
            f"refused: {label}: {'/'.join(sorted(states))} in median "
            f"{statistics.median(s for s, _, _ in times):.3f} s"
        )
    grid = grid_layout("grid", 10, 10, combination_size=5)
    raised = [raise_combination_size(url, grid, 6) for _ in range(args.runs)]
    print(
        "refused: max_combination_size 5 -> 6 on a 10x10 grid: "
        f"{'/'.join(sorted({state for _, state in raised}))} in median "
        f"{statistics.median(s for s, _ in raised):.3f} s"
    )
    ok = (
        result["combinations"] == expected
        and median < 2.0
        and refusals == {"RA012"}
        and {state for _, state in raised} == {"RA006"}
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
