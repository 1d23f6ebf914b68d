"""What the pages show: the states of the board, the floor timeline and the week's heatmap."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import Cursor

from control.web.db import q


@dataclass(frozen=True)
class StateMeta:
    state: str
    label: str
    colour: str
    doing: str


# In pipeline order. The colour is never the only signal: each state has a text label and a
# sentence saying what automation is doing about it.
STATES: tuple[StateMeta, ...] = (
    StateMeta(
        "created",
        "Created",
        "slate",
        "Accepted; a worker checks that the party fits the restaurant.",
    ),
    StateMeta(
        "capacity_verified",
        "Capacity Verified",
        "sky",
        "The party fits; it joins the assignment queue next.",
    ),
    StateMeta(
        "assignment_pending",
        "Assignment Pending",
        "blue",
        "Waiting in the queue for a worker (retries wait their back-off).",
    ),
    StateMeta(
        "assignment_in_progress",
        "Assignment In Progress",
        "indigo",
        "A worker is choosing and holding tables now.",
    ),
    StateMeta("assigned", "Assigned", "violet", "Tables are held; the worker confirms them next."),
    StateMeta(
        "confirmed",
        "Confirmed",
        "green",
        "Tables allocated. The nightly optimizer may still move it to better tables.",
    ),
    StateMeta(
        "manual_review",
        "Manual Review",
        "amber",
        "Automation gave up: a person requeues, confirms, assigns or declines it.",
    ),
    StateMeta(
        "seated",
        "Seated",
        "teal",
        "The party is at its tables; nothing automatic happens until it leaves.",
    ),
    StateMeta(
        "finished",
        "Finished",
        "stone",
        "The party left; the rest of its time is free for walk-ins and the waitlist.",
    ),
    StateMeta("no_show", "No-show", "rose", "The party did not come; its tables were freed."),
    StateMeta("failed", "Failed", "red", "Declined or impossible; nothing more happens."),
    StateMeta(
        "cancelled",
        "Cancelled",
        "zinc",
        "Cancelled by the guest or the restaurant; its tables were freed.",
    ),
)
_BY_STATE = {s.state: s for s in STATES}


def state_meta(state: str) -> StateMeta:
    return _BY_STATE.get(state) or StateMeta(state, state.replace("_", " ").title(), "slate", "")


def board_columns(rows: list[dict[str, Any]], only: str | None) -> list[dict[str, Any]]:
    """One column per state (or the one filtered on), with its count and its first cards."""
    columns = []
    for meta in STATES:
        if only is not None and meta.state != only:
            continue
        cards = [r for r in rows if r["state"] == meta.state]
        columns.append(
            {"meta": meta, "count": cards[0]["in_state"] if cards else 0, "cards": cards}
        )
    return columns


SLOT_MINUTES = 15


def floor_grid(
    cur: Cursor[dict[str, Any]], restaurant: dict[str, Any], day: dt.date
) -> dict[str, Any] | None:
    """Tables by 15-minute slots of the day's serving hours, with what occupies each."""
    window = cur.execute(
        q("floor_window"), {"restaurant_id": restaurant["id"], "day": day}
    ).fetchone()
    if window is None or window["opens"] is None:
        return None
    zone = ZoneInfo(restaurant["timezone"])
    start = dt.datetime.combine(day, window["opens"], zone)
    # Last seating plus three hours covers the longest usual stay.
    end = dt.datetime.combine(day, window["last_seating"], zone) + dt.timedelta(hours=3)
    slots = int((end - start).total_seconds() // (SLOT_MINUTES * 60))
    tables = cur.execute(q("floor_tables"), {"restaurant_id": restaurant["id"]}).fetchall()
    blocks = cur.execute(
        q("floor_blocks"), {"restaurant_id": restaurant["id"], "from": start, "to": end}
    ).fetchall()
    by_table: dict[int, list[dict[str, Any]]] = {t["id"]: [] for t in tables}
    for b in blocks:
        if b["table_id"] not in by_table:
            continue
        first = int((b["starts_at"] - start).total_seconds() // (SLOT_MINUTES * 60))
        last = -(-int((b["ends_at"] - start).total_seconds()) // (SLOT_MINUTES * 60))
        kind = (
            b["kind"] if b["kind"] == "block" else ("hold" if b["status"] == "hold" else "booking")
        )
        by_table[b["table_id"]].append(
            {
                **b,
                "kind": kind,
                "col": first + 2,
                "span": max(1, last - first),
                "starts": b["starts_at"].astimezone(zone).strftime("%H:%M"),
                "ends": b["ends_at"].astimezone(zone).strftime("%H:%M"),
            }
        )
    hours = [
        (i + 2, (start + dt.timedelta(minutes=SLOT_MINUTES * i)).strftime("%H:%M"))
        for i in range(0, slots, 4)
    ]
    return {
        "tables": tables,
        "rows": by_table,
        "slots": slots,
        "hours": hours,
        "services": window["services"],
        "opens": start.strftime("%H:%M"),
        "closes": end.strftime("%H:%M"),
    }


def heatmap(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The week's occupancy: days by 15-minute slots, each a share of the tables (0-100)."""
    slots = sorted({r["slot"] for r in rows})
    days: dict[dt.date, dict[str, int]] = {}
    for r in rows:
        days.setdefault(r["day"], {})[r["slot"]] = r["percent"]
    return {
        "slots": slots,
        "days": [(d, [cells.get(s) for s in slots]) for d, cells in sorted(days.items())],
    }


def level(percent: int | None) -> int:
    """The colour step (0-4) of an occupancy share; the number is printed too."""
    if percent is None:
        return -1
    return min(4, (percent + 24) // 25)
