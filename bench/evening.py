"""A simulated evening on the floor, through the real RPCs: bookings, late arrivals, early
finishes, no-shows, walk-ins and a waitlist.

    python bench/evening.py [--evenings 3] [--seed 2026] [--json]

Each evening (seeded) uses the sample restaurant's layout (30 tables, 98 seats) and a dinner
service 17:00-22:00. At 10:00, guests book the evening with ``book`` (the demo's party sizes,
times spread over the service). From 17:00 to 23:30 the clock (``allocator.freeze_clock``)
moves in 5-minute steps, and at each step:

* booked parties arrive at their time give or take ten minutes, a tenth of them 20 minutes
  late, and 8% never come; staff seat those who arrive (``seat_booking``);
* a seated party stays 70% to 105% of its turn time, then leaves (``finish_booking``);
* walk-ins arrive (on average one party every ten minutes): seated at once if a table is free
  (``seat_walk_in``), else they join the waitlist (``join_waitlist``) and are seated when
  offered a table (``seat_from_waitlist``); a party still waiting after an hour leaves;
* the sweeps run: lapsed holds, no-shows, waitlist offers.

The same evening is run twice: as it happens, and with the early finishes and no-shows
ignored (every party keeps its table for its whole booked turn, and a no-show's table stays
empty until its end). It prints covers and parties seated, table utilisation (occupied
table-minutes over the service's), the walk-ins' quoted and actual waits (error P50 and P95),
and the invariant violations (``check_invariants``), which must be 0.

It uses ``DATABASE_URL``, else the embedded cluster, as a superuser (the clock is frozen);
the database must be migrated to head. Each evening is one transaction, rolled back: it leaves
nothing behind.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

if __package__ in (None, ""):  # run as a script: python bench/evening.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from control.db import database_url
from control.demo import PARTY_SIZES, PARTY_WEIGHTS

ROOT = Path(__file__).resolve().parent.parent
TIMEZONE = "Europe/Rome"
STEP = timedelta(minutes=5)
TURN = "select upper(period) - lower(period) from allocator.bookings where id = %s"
SEAT = "select allocator.seat_booking(%s, p_actor => 'staff:bench')"
WALK_IN = "select allocator.seat_walk_in(%s, %s, p_actor => 'staff:bench')"
JOIN = "select allocator.join_waitlist(%s, %s, 'walk-in')"
FROM_WAITLIST = "select allocator.seat_from_waitlist(%s, %s, 'staff:bench')"
LEAVE_WAITLIST = "select allocator.remove_from_waitlist(%s, %s, 'staff:bench', 'left')"
FINISH = "select allocator.finish_booking(%s, p_actor => 'staff:bench')"


@dataclass
class Party:
    """A party of the evening: a booking or a walk-in, and what happened to it."""

    size: int
    booking_id: int | None = None
    arrives: datetime | None = None
    no_show: bool = False
    stay_factor: float = 1.0
    leaves: datetime | None = None
    seated: bool = False
    waitlist_id: int | None = None
    joined: datetime | None = None
    quoted: int | None = None
    waited: float | None = None


@dataclass
class Evening:
    """What one run of an evening gives."""

    covers: int = 0
    parties: int = 0
    walk_ins_seated: int = 0
    occupied_table_minutes: float = 0.0
    quote_errors: list[float] = field(default_factory=list)
    violations: int = 0


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(TIMEZONE))


def one(conn: psycopg.Connection[Any], sql: str, *args: Any) -> Any:
    row = conn.execute(sql, args).fetchone()
    return row[0] if row else None


def attempt(conn: psycopg.Connection[Any], sql: str, *args: Any) -> Any:
    """Run one RPC in a savepoint; None when it refuses (a project SQLSTATE)."""
    try:
        with conn.transaction():
            return one(conn, sql, *args)
    except psycopg.Error as exc:
        if (exc.sqlstate or "").startswith("RA"):
            return None
        raise


def run_evening(
    conn: psycopg.Connection[Any], day: date, seed: int, realistic: bool, bookings: int
) -> Evening:
    """One evening. ``realistic`` False ignores early finishes and no-shows."""
    rng = random.Random(seed)
    layout = json.loads((ROOT / "data" / "sample_restaurant.json").read_text())
    layout["name"] = f"bench evening {seed} {realistic}"
    rid = int(
        one(
            conn,
            "select allocator.import_layout(%s::jsonb) ->> 'restaurant_id'",
            json.dumps(layout),
        )
    )
    conn.execute(
        "select allocator.set_service(%s, 'dinner', array[1,2,3,4,5,6,7], '17:00', '22:00')", (rid,)
    )
    conn.execute("select allocator.freeze_clock(%s)", (local(day, 10),))
    parties: list[Party] = []
    for _ in range(bookings):
        size = rng.choices(PARTY_SIZES, PARTY_WEIGHTS)[0]
        minute = 17 * 60 + rng.randrange(0, 5 * 60 + 1, 15)
        start = local(day, minute // 60, minute % 60)
        booked = attempt(conn, "select allocator.book(%s, %s, %s)", rid, size, start)
        draw = rng.random()
        late = rng.uniform(-10, 10) if draw < 0.82 else 20.0
        party = Party(size, no_show=draw >= 0.92, stay_factor=rng.uniform(0.7, 1.05))
        if booked is not None:
            party.booking_id = int(booked["booking_id"])
            party.arrives = start + timedelta(minutes=late)
            parties.append(party)
    walk_ins: list[tuple[datetime, Party]] = []
    now = local(day, 17)
    while now < local(day, 22):
        if rng.random() < 0.5:
            walk_ins.append(
                (
                    now + timedelta(minutes=rng.uniform(0, 5)),
                    Party(
                        rng.choices(PARTY_SIZES[:6], PARTY_WEIGHTS[:6])[0],
                        stay_factor=rng.uniform(0.7, 1.05),
                    ),
                )
            )
        now += STEP
    result = Evening()
    now = local(day, 17)
    end = local(day, 23, 30)
    while now <= end:
        conn.execute("select allocator.freeze_clock(%s)", (now,))
        conn.execute("select allocator.expire_holds()")
        if realistic:
            conn.execute("select allocator.mark_no_shows()")
        for party in parties:
            if party.seated or party.no_show or party.arrives is None or party.arrives > now:
                continue
            seated = attempt(conn, SEAT, party.booking_id)
            if seated is not None:
                party.seated = True
                turn = one(conn, TURN, party.booking_id)
                stay = turn * (party.stay_factor if realistic else 1.0)
                party.leaves = now + stay if realistic else max(now, party.arrives) + turn
        for arrival, party in walk_ins:
            if party.seated or party.waitlist_id is not None or arrival > now or party.joined:
                continue
            seated = attempt(conn, WALK_IN, rid, party.size)
            if seated is not None:
                party.seated, party.booking_id = True, int(seated["booking_id"])
                party.leaves = now + timedelta(
                    minutes=int(seated["turn_minutes"]) * party.stay_factor
                )
                result.walk_ins_seated += 1
                continue
            joined = attempt(conn, JOIN, rid, party.size)
            party.joined = now
            if joined is not None:
                party.waitlist_id, party.quoted = (
                    int(joined["waitlist_id"]),
                    joined["quoted_minutes"],
                )
        for _arrival, party in walk_ins:
            if party.waitlist_id is None or party.seated:
                continue
            status = one(
                conn, "select status from allocator.waitlist where id = %s", party.waitlist_id
            )
            if status == "offered":
                seated = attempt(conn, FROM_WAITLIST, rid, party.waitlist_id)
                if seated is not None:
                    party.seated, party.booking_id = True, int(seated["booking_id"])
                    assert party.joined is not None
                    party.waited = (now - party.joined).total_seconds() / 60
                    turn = one(conn, TURN, party.booking_id)
                    party.leaves = now + turn * party.stay_factor
                    if party.quoted is not None:
                        result.quote_errors.append(party.waited - party.quoted)
            elif status == "waiting" and party.joined and now - party.joined >= timedelta(hours=1):
                attempt(conn, LEAVE_WAITLIST, rid, party.waitlist_id)
                party.waitlist_id = -1
        for party in [*parties, *(p for _, p in walk_ins)]:
            due = party.seated and party.leaves is not None and party.leaves <= now
            if due and attempt(conn, FINISH, party.booking_id):
                party.leaves = None
        conn.execute("select allocator.offer_waitlists()")
        now += STEP
    result.covers, result.parties = conn.execute(
        """select coalesce(sum(b.party_size), 0)::int, count(*)::int from allocator.bookings b
            where b.restaurant_id = %s and b.state in ('seated', 'finished')""",
        (rid,),
    ).fetchone() or (0, 0)
    result.occupied_table_minutes = float(
        one(
            conn,
            """select coalesce(sum(extract(epoch from least(upper(a.period), %s)
                                                  - lower(a.period)) / 60), 0)
             from allocator.allocations a
             join allocator.bookings b on b.restaurant_id = a.restaurant_id and b.id = a.booking_id
            where a.restaurant_id = %s and a.kind = 'confirmed'
              and b.state in ('seated', 'finished')""",
            end,
            rid,
        )
    )
    result.violations = int(
        one(conn, "select count(*) from allocator.check_invariants() where restaurant_id = %s", rid)
    )
    return result


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evenings", type=int, default=3)
    parser.add_argument("--bookings", type=int, default=110, help="Booking requests per evening.")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    day = date.today() + timedelta(days=30)
    tables, service_minutes = 30, (23 * 60 + 30) - 17 * 60
    report: dict[str, list[dict[str, Evening]]] = {"evenings": []}
    # Each evening runs in one transaction (the frozen clock lasts as long), rolled back.
    with psycopg.connect(database_url(), autocommit=False) as conn:
        for i in range(args.evenings):
            runs = {}
            for realistic in (True, False):
                name = "as_it_happens" if realistic else "ignoring_early_finishes_and_no_shows"
                runs[name] = run_evening(
                    conn, day + timedelta(days=i), args.seed + i, realistic, args.bookings
                )
                conn.rollback()
            report["evenings"].append(runs)
    rows: list[dict[str, Any]] = []
    for name in ("as_it_happens", "ignoring_early_finishes_and_no_shows"):
        evenings = [e[name] for e in report["evenings"]]
        errors = [abs(x) for r in evenings for x in r.quote_errors]
        rows.append(
            {
                "run": name,
                "covers": sum(r.covers for r in evenings),
                "parties": sum(r.parties for r in evenings),
                "walk_ins_seated": sum(r.walk_ins_seated for r in evenings),
                "utilisation": round(
                    sum(r.occupied_table_minutes for r in evenings)
                    / (tables * service_minutes * len(evenings)),
                    3,
                ),
                "quotes": len(errors),
                "quote_error_p50_min": percentile(errors, 0.5),
                "quote_error_p95_min": percentile(errors, 0.95),
                "violations": sum(r.violations for r in evenings),
            }
        )
    gain = rows[0]["covers"] / rows[1]["covers"] - 1 if rows[1]["covers"] else 0.0
    summary = {
        "evenings": args.evenings,
        "seed": args.seed,
        "runs": rows,
        "covers_gain": round(gain, 4),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        for r in rows:
            print(
                f"{r['run']:<38} covers {r['covers']:>5}  parties {r['parties']:>4}  "
                f"walk-ins seated {r['walk_ins_seated']:>3}  utilisation {r['utilisation']:.1%}"
            )
            print(
                f"{'':<38} quotes {r['quotes']:>3}  |waited - quoted| P50 "
                f"{r['quote_error_p50_min']} min, P95 {r['quote_error_p95_min']} min  "
                f"violations {r['violations']}"
            )
        print(f"early finishes and no-shows: {gain:+.1%} covers")
    return 1 if any(r["violations"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
