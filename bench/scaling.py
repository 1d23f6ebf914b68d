"""Cost as the work grows: the asynchronous pgbench script (create a booking, then process it)
against more restaurants, and against fuller days.

    python bench/scaling.py [--seconds 10] [--json] [--png FILE]

* **Restaurants**: 1, 10, 100 and 1,000 copies of ``data/sample_restaurant.json``; requests
  spread over the next year, as in ``allocator bench pipeline``'s pgbench script. Confirmed
  per second, script latency (median, P95) and the server's memory.
* **Bookings per restaurant-day**: 10 restaurants, every request for one day, until each
  restaurant has 1,000 requests that day; script latency by how many requests the day already
  had (0-100, 100-300, 300-1,000). Past about 150 requests a day the sample layout is full, so
  later requests end in a retry (``no_free_table``), then in manual review: the figure is the
  cost of each answer, not of a confirmation.

Memory is the proportional set size (PSS) summed over the cluster's processes, read from
``/proc`` every half second during each step, its peak reported (shared buffers counted
once). pgbench runs with ``-c 8 -j 2`` and logs every transaction (``-l``); the percentiles
come from those logs. It uses ``DATABASE_URL``, else the embedded cluster; the database must
be migrated to head. Every restaurant it creates is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/scaling.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bench.pgbench_rpc import ASYNC_SCRIPT, pgbench_base
from bench.pipeline import create_restaurants, delete_restaurants, sample_layout, summarize
from control.db import database_url

RESTAURANT_STEPS = (1, 10, 100, 1000)
DAY_BUCKETS = ((0, 100), (100, 300), (300, 1000))
ONE_DAY_SCRIPT = ASYNC_SCRIPT.replace("random(1, 365)", ":day_fixed")


def server_memory_mb(url: str) -> float:
    """Memory of every process of the cluster, in MB: the sum of their proportional set
    sizes (PSS), so that shared buffers are counted once, not once per backend."""
    with psycopg.connect(url) as conn:
        row = conn.execute("select current_setting('data_directory')").fetchone()
    assert row is not None
    try:
        postmaster = int((Path(str(row[0])) / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError):
        return float("nan")
    pids = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(postmaster), "-p", str(postmaster)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue  # a process that ended meanwhile
    return round(total_kb / 1024, 1)


def pgbench(
    url: str,
    script: str,
    defines: dict[str, int],
    seconds: int | None = None,
    transactions: int | None = None,
) -> tuple[float, list[tuple[float, float]]]:
    """Run a script with ``-c 8 -j 2``: the cluster's peak memory during the run (MB, sampled
    every half second) and (start, latency ms) per script."""
    base, env = pgbench_base(url)
    dbname = str(conninfo_to_dict(url).get("dbname", "allocator"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "script.sql"
        path.write_text(script)
        command = [*base, "-n", "-c", "8", "-j", "2", "-l", "--log-prefix", f"{tmp}/log"]
        command += ["-T", str(seconds)] if seconds else ["-t", str(transactions)]
        for key, value in defines.items():
            command += ["-D", f"{key}={value}"]
        with subprocess.Popen(
            [*command, "-f", str(path), dbname],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        ) as proc:
            peak = 0.0
            while proc.poll() is None:
                peak = max(peak, server_memory_mb(url))
                time.sleep(0.5)
            _, stderr = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(stderr.strip()[-2000:])
        samples: list[tuple[float, float]] = []
        for log in Path(tmp).glob("log*"):
            for line in log.read_text().splitlines():
                fields = line.split()
                # client transaction latency_us script epoch_s epoch_us
                samples.append((int(fields[4]) + int(fields[5]) / 1e6, int(fields[2]) / 1000))
    samples.sort()
    return peak, samples


def restaurants_step(url: str, ids: list[int], seconds: int) -> dict[str, Any]:
    """The asynchronous script spread over the restaurants ``ids`` for ``seconds``."""
    with psycopg.connect(url) as conn:
        row = conn.execute("select coalesce(max(id), 0) from allocator.bookings").fetchone()
    before = int(row[0]) if row else 0
    peak, samples = pgbench(
        url, ASYNC_SCRIPT, {"first": min(ids), "restaurants": len(ids)}, seconds
    )
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select count(*) filter (where state = 'confirmed'), count(*) from allocator.bookings"
            " where id > %s and restaurant_id = any(%s)",
            (before, ids),
        ).fetchone()
    assert row is not None
    latencies = [ms for _, ms in samples]
    return {
        "restaurants": len(ids),
        "bookings": int(row[1]),
        "confirmed_per_s": round(int(row[0]) / seconds, 1),
        "latency_ms": summarize(latencies, 2),
        "server_peak_pss_mb": peak,
    }


def day_steps(url: str, ids: list[int], per_day: int) -> list[dict[str, Any]]:
    """Every request for one day of ``ids``, ``per_day`` per restaurant; latency by how full
    the day already was."""
    total = per_day * len(ids)
    peak, samples = pgbench(
        url,
        ONE_DAY_SCRIPT,
        {"first": min(ids), "restaurants": len(ids), "day_fixed": 30},
        transactions=total // 8,
    )
    out = []
    for low, high in DAY_BUCKETS:
        # Scripts run in start order; the n-th of the run found about n / restaurants
        # requests already made for its restaurant's day.
        bucket = [ms for n, (_, ms) in enumerate(samples) if low <= n / len(ids) < high]
        if bucket:
            out.append(
                {
                    "requests_before": f"{low}-{high}",
                    "scripts": len(bucket),
                    "latency_ms": summarize(bucket, 2),
                }
            )
    with psycopg.connect(url) as conn:
        states: dict[Any, Any] = dict(
            conn.execute(
                "select state, count(*) from allocator.bookings where restaurant_id = any(%s)"
                " group by state",
                (ids,),
            ).fetchall()
        )
    out.append(
        {
            "states": {str(k): int(v) for k, v in states.items()},
            "server_peak_pss_mb": peak,
        }
    )
    return out


def write_png(path: Path, figures: dict[str, Any]) -> None:
    """Confirmed/s and P95 against restaurants; P95 against the day's fill."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    steps = figures["restaurants"]
    xs = [s["restaurants"] for s in steps]
    left.plot(xs, [s["confirmed_per_s"] for s in steps], marker="o", label="confirmed/s")
    left.set_xscale("log")
    left.set_xlabel("restaurants")
    left.set_ylabel("confirmed per second")
    twin = left.twinx()
    twin.plot(
        xs, [s["latency_ms"]["p95"] for s in steps], marker="s", color="tab:red", label="P95 ms"
    )
    twin.set_ylabel("script P95 (ms)")
    left.set_title("asynchronous script, -c 8")
    buckets = [b for b in figures["day"] if "requests_before" in b]
    right.bar([b["requests_before"] for b in buckets], [b["latency_ms"]["p95"] for b in buckets])
    right.set_xlabel("requests already made for the day (per restaurant)")
    right.set_ylabel("script P95 (ms)")
    right.set_title("10 restaurants, one day")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every step and print the figures (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--max-restaurants", type=int, default=1000)
    parser.add_argument("--per-day", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--png", type=Path)
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 600 or not 1 <= args.max_restaurants <= 1000:
        parser.error("--seconds must be from 1 to 600 and --max-restaurants from 1 to 1000")
    if not 10 <= args.per_day <= 1000:
        parser.error("--per-day must be from 10 to 1000")
    url = database_url()
    steps = [n for n in RESTAURANT_STEPS if n <= args.max_restaurants]
    figures: dict[str, Any] = {"restaurants": [], "day": []}
    ids = create_restaurants(url, sample_layout(), [f"scaling {i}" for i in range(max(steps))])
    try:
        figures["server_pss_mb_idle"] = server_memory_mb(url)
        for n in steps:
            figures["restaurants"].append(restaurants_step(url, ids[:n], args.seconds))
            if not args.json:
                print(json.dumps(figures["restaurants"][-1]))
    finally:
        delete_restaurants(url, ids)
    day_ids = create_restaurants(url, sample_layout(), [f"scaling day {i}" for i in range(10)])
    try:
        figures["day"] = day_steps(url, day_ids, args.per_day)
    finally:
        delete_restaurants(url, day_ids)
    if args.png:
        write_png(args.png, figures)
    print(json.dumps(figures, indent=2) if args.json else json.dumps(figures["day"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
