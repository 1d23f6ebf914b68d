"""The benchmarks that call the RPCs directly: pgbench's asynchronous script (create, then
process, as an application and a worker would) and the racers (many sessions at one instant
on four tables)."""

from __future__ import annotations

import json

import psycopg
import pytest
from rich.console import Console

from bench import booking_flow, racers, scaling
from bench.pgbench_rpc import run_rpc_pgbench, run_rpc_scripts
from bench.pipeline import create_restaurants, delete_restaurants, sample_layout


def test_async_script_makes_and_confirms_one_booking_per_transaction(db_url: str) -> None:
    ids = create_restaurants(db_url, sample_layout(), ["pgbench test 1", "pgbench test 2"])
    try:
        figures = run_rpc_pgbench(db_url, Console(quiet=True), ids, 2, "async", clients=2)
        with psycopg.connect(db_url) as conn:
            row = conn.execute(
                "select count(*) from allocator.check_invariants() where restaurant_id = any(%s)",
                (ids,),
            ).fetchone()
    finally:
        delete_restaurants(db_url, ids)
    assert figures["transactions"] and figures["transactions"] > 0
    # Each script is one booking; the last of each client may be cut by the end of the run.
    made = sum(figures["states"].values())
    assert figures["transactions"] <= made <= figures["transactions"] + 2
    assert figures["confirmed"] >= 0.9 * figures["transactions"], figures["states"]
    assert figures["confirmed_per_s"] == round(figures["confirmed"] / 2, 1)
    assert row == (0,)


def test_racers_hold_and_process_without_deadlocks(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert racers.main(["--sessions", "8", "--rounds", "3", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["mode"] for r in results] == ["hold", "process"]
    for r in results:
        assert r["calls"] == 24 and sum(r["outcomes"].values()) == 24
        assert r["deadlocks"] == 0, r
        assert r["invariant_violations"] == 0, r
        latency = r["latency_ms"]
        assert latency["n"] == 24
        assert latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    hold = results[0]["outcomes"]
    # Four tables, one evening per round: at most four holds succeed per round; the others
    # are refused with the conflict error, never another SQLSTATE.
    assert 3 <= hold.get("held", 0) <= 12 and set(hold) <= {"held", "error RA003"}, hold
    with psycopg.connect(db_url) as conn:
        left = conn.execute(
            "select count(*) from allocator.restaurants where name = 'bench racers'"
        ).fetchone()
    assert left == (0,)


def test_scaling_measures_every_step_and_cleans_up(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert (
        scaling.main(["--seconds", "1", "--max-restaurants", "10", "--per-day", "10", "--json"])
        == 0
    )
    figures = json.loads(capsys.readouterr().out)
    assert [s["restaurants"] for s in figures["restaurants"]] == [1, 10]
    for step in figures["restaurants"]:
        assert step["bookings"] > 0 and step["latency_ms"]["n"] > 0
        assert step["server_peak_pss_mb"] > 0
    [bucket, totals] = figures["day"]
    assert bucket["requests_before"] == "0-100" and bucket["latency_ms"]["n"] > 0
    assert sum(totals["states"].values()) == bucket["scripts"] == bucket["latency_ms"]["n"]
    with psycopg.connect(db_url) as conn:
        left = conn.execute(
            "select count(*) from allocator.restaurants where name like 'scaling %'"
        ).fetchone()
    assert left == (0,)


def test_instant_script_searches_and_books(db_url: str) -> None:
    figures = run_rpc_scripts(db_url, Console(quiet=True), 2, restaurants=2)["instant"]
    assert figures["transactions"] and figures["transactions"] > 0
    # Each script books once: confirmed, or refused (nothing written); the last of a client
    # may be cut by the end of the run.
    made = sum(figures["states"].values())
    assert figures["confirmed"] == made <= figures["transactions"] + 2
    assert figures["confirmed"] >= 0.9 * figures["transactions"], figures
    with psycopg.connect(db_url) as conn:
        left = conn.execute(
            "select count(*) from pg_namespace where nspname = 'allocator_bench'"
        ).fetchone()
    assert left == (0,)


def test_booking_flow_measures_search_and_book(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert booking_flow.main(["--calls", "6", "--per-day", "20", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert sum(figures["fill_outcomes"].values()) == 60
    assert figures["find_slots_ms"]["n"] == 6 and figures["book_ms"]["n"] == 6
    assert set(figures["book_outcomes"]) <= {"confirmed", "RA013", "RA014"}
    assert figures["book_outcomes"].get("confirmed", 0) >= 1
    with psycopg.connect(db_url) as conn:
        left = conn.execute(
            "select count(*) from allocator.restaurants where name = 'bench booking flow'"
        ).fetchone()
    assert left == (0,)
