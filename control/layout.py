"""Loading a restaurant layout and showing it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from rich.console import Console
from rich.table import Table

from control.display import cell, literal
from control.queries import query


class LayoutFileError(ValueError):
    """The layout file cannot be read as JSON (its content is the database's to judge)."""


def load_layout(conn: psycopg.Connection[Any], path: Path, *, replace: bool = False) -> int:
    """Create the restaurant described by a layout file; returns its id.

    With ``replace``, restaurants of the same name are deleted first (with their bookings).
    """
    try:
        layout = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise LayoutFileError(f"{path}: cannot be read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise LayoutFileError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from exc
    name = layout.get("name") if isinstance(layout, dict) else None
    with conn.transaction():
        if replace:
            for (restaurant_id,) in conn.execute(
                query("restaurant_by_name"), {"name": name}
            ).fetchall():
                conn.execute(query("delete_restaurant"), {"restaurant_id": restaurant_id})
        row = conn.execute(query("import_layout"), {"layout": json.dumps(layout)}).fetchone()
    assert row is not None
    return int(row[0]["restaurant_id"])


def show_layout(conn: psycopg.Connection[Any], restaurant_id: int, console: Console) -> bool:
    """Print a restaurant's tables and table combinations; False if there is no such
    restaurant."""
    with conn.cursor(row_factory=dict_row) as cur:
        restaurant = cur.execute(query("restaurant"), {"restaurant_id": restaurant_id}).fetchone()
        if restaurant is None:
            console.print(f"[red]no restaurant {restaurant_id}[/red]")
            return False
        tables = cur.execute(query("layout_tables"), {"restaurant_id": restaurant_id}).fetchall()
        combos = cur.execute(
            query("layout_combinations"), {"restaurant_id": restaurant_id}
        ).fetchall()

    grid = Table(
        title=f"{literal(restaurant['name'])} (#{restaurant_id}, "
        f"{literal(restaurant['timezone'])}): tables"
    )
    for column in ("zone", "table", "seats", "combinable", "active", "neighbours"):
        grid.add_column(column)
    for t in tables:
        grid.add_row(
            cell(t["zone"] or None),
            cell(t["label"]),
            cell(f"{t['min_capacity']}-{t['max_capacity']}"),
            "yes" if t["combinable"] else "no",
            "yes" if t["active"] else "no",
            cell(t["neighbours"]),
        )
    console.print(grid)

    by_size: dict[int, list[dict[str, Any]]] = {}
    for c in combos:
        by_size.setdefault(c["table_count"], []).append(c)
    summary = Table(title="table combinations (connected sets of adjacent tables)")
    summary.add_column("tables")
    summary.add_column("count")
    summary.add_column("combinations (seats)")
    for size, items in sorted(by_size.items()):
        summary.add_row(
            str(size),
            str(len(items)),
            cell(
                ", ".join(f"{c['labels']} ({c['min_capacity']}-{c['max_capacity']})" for c in items)
            ),
        )
    console.print(summary)
    console.print(
        f"{len(tables)} tables, {sum(t['max_capacity'] for t in tables)} seats, "
        f"{len(combos)} combinations"
    )
    return True
