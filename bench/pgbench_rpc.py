"""pgbench calling the RPCs as an application and a worker would, beside standard TPC-B.

``allocator bench pipeline`` runs this after TPC-B, on the same cluster, with the same
client count (``-c 8 -j 2``) and duration. One pgbench transaction of the *asynchronous*
script is one booking: ``create_booking`` (the application's transaction) then
``process_booking`` of that booking (the worker's transaction), two transactions as in
production, from the same client. The restaurants are copies of ``data/sample_restaurant.json``
in their default configuration; requests are spread over the next year, 11:00-22:00 local,
with the demo's party sizes, so nearly every one has room.

One transaction of the *instant* script is a guest's search and booking: ``find_slots`` for a
day, then ``book`` at one of its slots, each its own transaction; its restaurants serve lunch
and dinner every day. A refusal (the last table taken meanwhile by another client) is counted,
not an error: a helper function in a schema ``allocator_bench``, dropped afterwards, turns
``RA013``/``RA014`` into the answer ``refused``.

What it reports: scripts per second (pgbench's tps), bookings confirmed per second during the
run (counted in the database afterwards), the average latency of a script, and the ratio of
confirmed/s to TPC-B tps.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from rich.console import Console

from control.cluster import pg_bindir

# A guest's request: a restaurant, a day of the next year and a party size (about the demo's
# mix), the start of both scripts.
REQUEST = """\
\\set r random(0, :restaurants - 1)
\\set day random(1, 365)
\\set p random(1, 100)
\\set small case when :p <= 10 then 1 when :p <= 55 then 2 when :p <= 70 then 3 else 4 end
\\set party case when :p <= 85 then :small when :p <= 95 then 6 else 8 end
"""

ASYNC_SCRIPT = (
    REQUEST
    + """\
\\set slot random(0, 43)
select (allocator.create_booking(:first + :r, :party,
        (current_date + :day)::timestamp at time zone 'Europe/Rome' + interval '11 hours'
          + :slot * interval '15 minutes', 120) ->> 'booking_id')::bigint as booking_id \\gset
select allocator.process_booking(:booking_id, 'pgbench') ->> 'outcome' as outcome \\gset
"""
)

# The instant path: search one day's slots, book one of them. A refusal (another client took
# the last table meanwhile) is an answer too: bench_book returns 'refused' instead of raising,
# which would abort the pgbench client.
INSTANT_SCRIPT = (
    REQUEST
    + """\
select extract(epoch from coalesce((select s.start from allocator.find_slots(:first + :r, :party,
          current_date + :day, current_date + :day + 1) s order by random() limit 1),
        current_date + :day + interval '19 hours'))::bigint as slot \\gset
select allocator_bench.bench_book(:first + :r, :party, to_timestamp(:slot)) as outcome \\gset
"""
)

BENCH_BOOK = """
create schema if not exists allocator_bench;
create or replace function allocator_bench.bench_book(
  p_restaurant bigint, p_party integer, p_start timestamptz)
returns text language plpgsql as $$
begin
  return allocator.book(p_restaurant, p_party, p_start) ->> 'state';
exception when sqlstate 'RA013' or sqlstate 'RA014' then
  return 'refused';
end
$$;
"""

SCRIPTS = {"async": ASYNC_SCRIPT, "instant": INSTANT_SCRIPT}
# The instant script's restaurants serve lunch and dinner every day (local times).
SERVICES = (("lunch", "12:00", "14:30"), ("dinner", "18:00", "22:00"))
SET_SERVICE = "select allocator.set_service(%s, %s, array[1,2,3,4,5,6,7], %s, %s)"


def pgbench_base(url: str) -> tuple[list[str], dict[str, str]]:
    """The pgbench binary with the connection options of ``url``, and its environment."""
    info = conninfo_to_dict(url)
    base = [str(pg_bindir() / "pgbench")]
    for flag, key in (("-h", "host"), ("-p", "port"), ("-U", "user")):
        if info.get(key):
            base += [flag, str(info[key])]
    env = {**os.environ}
    if info.get("password"):
        env["PGPASSWORD"] = str(info["password"])
    return base, env


def run_rpc_pgbench(
    url: str,
    console: Console,
    restaurant_ids: list[int],
    seconds: int,
    script: str = "async",
    clients: int = 8,
) -> dict[str, Any]:
    """Run one script against restaurants ``restaurant_ids`` (consecutive ids) for ``seconds``."""
    from bench.pipeline import parse_pgbench

    first, count = min(restaurant_ids), len(restaurant_ids)
    if sorted(restaurant_ids) != list(range(first, first + count)):
        raise RuntimeError("the pgbench script needs restaurants with consecutive ids")
    info = conninfo_to_dict(url)
    base, env = pgbench_base(url)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select coalesce(max(id), 0) from allocator.bookings").fetchone()
        before = int(row[0]) if row else 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{script}.sql"
        path.write_text(SCRIPTS[script])
        command = [
            *base,
            "-n",
            "-c",
            str(clients),
            "-j",
            "2",
            "-T",
            str(seconds),
            "-D",
            f"first={first}",
            "-D",
            f"restaurants={count}",
            "-f",
            str(path),
            str(info.get("dbname", "allocator")),
        ]
        console.print(f"[bold]pgbench[/bold] {script} script: -c {clients} -j 2 -T {seconds}")
        run = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"pgbench ({script}) failed: {run.stderr.strip()[-2000:]}")
    figures = parse_pgbench(run.stdout)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "select state, count(*) from allocator.bookings"
            " where id > %s and restaurant_id = any(%s) group by state",
            (before, restaurant_ids),
        ).fetchall()
    states = {str(state): int(n) for state, n in rows}
    confirmed = states.get("confirmed", 0)
    return figures | {
        "script": script,
        "command": f"pgbench -n -c {clients} -j 2 -T {seconds} -f {script}.sql",
        "seconds": seconds,
        "restaurants": count,
        "states": states,
        "confirmed": confirmed,
        "confirmed_per_s": round(confirmed / seconds, 1),
    }


def run_rpc_scripts(
    url: str, console: Console, seconds: int, restaurants: int = 20
) -> dict[str, Any]:
    """Every RPC script, each on ``restaurants`` fresh copies of the sample layout (deleted
    afterwards)."""
    from bench.pipeline import create_restaurants, delete_restaurants, sample_layout

    out: dict[str, Any] = {}
    for script in SCRIPTS:
        ids = create_restaurants(
            url, sample_layout(), [f"pgbench {script} {i}" for i in range(restaurants)]
        )
        try:
            if script == "instant":
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(BENCH_BOOK)
                    for rid in ids:
                        for name, opens, last in SERVICES:
                            conn.execute(SET_SERVICE, (rid, name, opens, last))
            out[script] = run_rpc_pgbench(url, console, ids, seconds, script)
        finally:
            delete_restaurants(url, ids)
            if script == "instant":
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("drop schema if exists allocator_bench cascade")
    return out
