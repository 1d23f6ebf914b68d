"""The benchmarks' command line: ``python -m bench <command>``, and ``allocator bench <command>``
in a source checkout (control/cli.py adds this app as its ``bench`` group).

Only typer is imported here; a command imports its benchmark when it runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

PROG = "python -m bench"

app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)


class _KeepsArgv(TyperCommand):
    """A command that keeps its own arguments, as given, in ``ctx.meta["bench.argv"]``
    (the pipeline's JSON records them)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["bench.argv"] = list(args)
        return super().parse_args(ctx, args)


# ----------------------------------------------------------------------------------------
# quality


def strategy_weights(text: str) -> dict[str, float]:
    """``--strategy-weights``: a JSON object of numbers (the database checks the names)."""
    try:
        weights = json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}") from None
    if not isinstance(weights, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in weights.values()
    ):
        raise typer.BadParameter('a JSON object of numbers, e.g. {"zone_preference": 0.1}')
    return {str(k): float(v) for k, v in weights.items()}


@app.command("quality")
def quality(
    instances: Annotated[int, typer.Option(help="instances to run (50)", show_default=False)] = 50,
    seed: Annotated[int, typer.Option(help="seed of the instances (1)", show_default=False)] = 1,
    tables_large: Annotated[
        int | None, typer.Option(help="tables of the solve-time instance (40; 10 with --quick)")
    ] = None,
    bookings_large: Annotated[
        int | None,
        typer.Option(help="bookings of the solve-time instance (300; 40 with --quick)"),
    ] = None,
    json_path: Annotated[
        Path | None,
        typer.Option(
            "--json", help="where to write the figures (default bench/results/quality.json)"
        ),
    ] = None,
    png_path: Annotated[
        Path | None,
        typer.Option("--png", help="where to write the chart (default bench/results/quality.png)"),
    ] = None,
    time_limit_ms: Annotated[
        int, typer.Option(help="optimize_day's time limit (2000)", show_default=False)
    ] = 2000,
    quick: Annotated[
        bool, typer.Option("--quick", help="tiny instances and one timing run, for tests")
    ] = False,
    weights: Annotated[
        dict[str, float] | None,
        typer.Option(
            "--strategy-weights",
            parser=strategy_weights,
            metavar="JSON",
            help="the engine's strategy_weights for every instance, as a JSON object "
            "(default: the restaurant defaults)",
        ),
    ] = None,
) -> None:
    """Seated covers: legacy first-fit, the online engine, optimize_day, the hindsight optimum."""
    if instances < 1:
        raise typer.BadParameter("must be at least 1", param_hint="'--instances'")
    from bench import quality as bench_quality

    results = bench_quality.results_dir()
    settings = bench_quality.Settings(
        instances=instances,
        seed=seed,
        tables_large=(10 if quick else 40) if tables_large is None else tables_large,
        bookings_large=(40 if quick else 300) if bookings_large is None else bookings_large,
        json=json_path or results / "quality.json",
        png=png_path or results / "quality.png",
        time_limit_ms=time_limit_ms,
        quick=quick,
        strategy_weights=weights,
    )
    raise typer.Exit(bench_quality.run(settings))


# ----------------------------------------------------------------------------------------
# pipeline


class Scenario(StrEnum):
    """``--scenario``."""

    BURST = "burst"
    STEADY = "steady"
    CONTENTION = "contention"
    ALL = "all"


@app.command("pipeline", cls=_KeepsArgv)
def pipeline(
    ctx: typer.Context,
    scenario: Annotated[Scenario, typer.Option()] = Scenario.ALL,
    bookings: Annotated[
        int | None, typer.Option(help="burst size (default 500; 20 with --quick)")
    ] = None,
    workers: Annotated[int, typer.Option(help="worker processes, each with --concurrency 2")] = 2,
    rate: Annotated[
        float | None,
        typer.Option(
            help="steady arrivals per second (default: half the burst's "
            "confirmed/s if burst ran, else 20)"
        ),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="steady run in seconds (default 20; 3 with --quick)")
    ] = None,
    contention_bookings: Annotated[
        int | None, typer.Option(help="bookings for one slot (default 200; 12 with --quick)")
    ] = None,
    contention_tables: Annotated[int, typer.Option()] = 4,
    pgbench: Annotated[
        bool,
        typer.Option(
            "--pgbench/--no-pgbench",
            help="run pgbench on the same cluster (default on)",
            show_default=False,
        ),
    ] = True,
    pgbench_seconds: Annotated[int, typer.Option()] = 20,
    write_json: Annotated[
        bool,
        typer.Option("--json", help="write bench/results/pipeline-<scenario>-<timestamp>.json"),
    ] = False,
    write_png: Annotated[
        bool,
        typer.Option(
            "--png",
            help="write a latency histogram bench/results/pipeline-<scenario>-<timestamp>.png",
        ),
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="folder for --json and --png (default bench/results)")
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="a tiny run for tests: few bookings, no pgbench")
    ] = False,
    keep: Annotated[
        bool, typer.Option("--keep", help="keep the benchmark's restaurants and bookings")
    ] = False,
    seed: Annotated[int, typer.Option()] = 2026,
) -> None:
    """Burst, steady and contention runs of the pipeline, against pgbench on the same cluster."""
    # As before: 0 (or nothing) means the default size.
    bookings = bookings or (20 if quick else 500)
    contention_bookings = contention_bookings or (12 if quick else 200)
    for name, value in (
        ("--bookings", bookings),
        ("--workers", workers),
        ("--contention-bookings", contention_bookings),
    ):
        if value < 1:
            raise typer.BadParameter("must be positive", param_hint=f"'{name}'")
    from bench import pipeline as bench_pipeline

    settings = bench_pipeline.Settings(
        scenario=scenario.value,
        bookings=bookings,
        workers=workers,
        rate=rate,
        duration=duration or (3.0 if quick else 20.0),
        contention_bookings=contention_bookings,
        contention_tables=contention_tables,
        pgbench=pgbench and not quick,
        pgbench_seconds=pgbench_seconds,
        json=write_json,
        png=write_png,
        out=out,
        quick=quick,
        keep=keep,
        seed=seed,
    )
    raise typer.Exit(bench_pipeline.run(settings, list(ctx.meta.get("bench.argv", []))))


# ----------------------------------------------------------------------------------------
# console


@app.command("console", cls=_KeepsArgv)
def console(
    ctx: typer.Context,
    restaurants: Annotated[int, typer.Option(help="restaurants of 16 tables")] = 50,
    bookings_per_restaurant: Annotated[
        int, typer.Option(help="bookings of the day in each restaurant")
    ] = 100,
    requests: Annotated[
        int, typer.Option(help="sequential requests of each page, for each member")
    ] = 200,
    live: Annotated[
        int,
        typer.Option(help="confirmations watched in the browser (0: no browser)"),
    ] = 20,
    other_days: Annotated[
        int,
        typer.Option(
            help="also copy the day's bookings, cancelled, to this many days around it "
            "(the board then picks its day out of a longer table)"
        ),
    ] = 0,
    write_json: Annotated[
        bool,
        typer.Option("--json", help="print the figures as JSON on stdout (the tables on stderr)"),
    ] = False,
    keep: Annotated[
        bool, typer.Option("--keep", help="keep the scratch database (its name is printed)")
    ] = False,
    seed: Annotated[int, typer.Option()] = 2026,
) -> None:
    """The staff console's pages (server time) and live updates (in Chromium) on a busy day."""
    for name, value, least in (
        ("--restaurants", restaurants, 1),
        ("--bookings-per-restaurant", bookings_per_restaurant, 4),
        ("--requests", requests, 1),
        ("--live", live, 0),
        ("--other-days", other_days, 0),
    ):
        if value < least:
            raise typer.BadParameter(f"must be at least {least}", param_hint=f"'{name}'")
    from bench import console as bench_console

    settings = bench_console.Settings(
        restaurants=restaurants,
        bookings_per_restaurant=bookings_per_restaurant,
        requests=requests,
        live=live,
        other_days=other_days,
        json=write_json,
        keep=keep,
        seed=seed,
    )
    raise typer.Exit(bench_console.run(settings, list(ctx.meta.get("bench.argv", []))))


# ----------------------------------------------------------------------------------------
# instant


class DemandModel(StrEnum):
    """``instant --model``."""

    QUALITY = "quality"
    HEAVY = "heavy"
    ALL = "all"


def scale_list(text: str) -> tuple[float, ...]:
    """``--scales``: positive numbers separated by commas."""
    hint = "positive numbers separated by commas, e.g. 0.5,1,1.5"
    try:
        scales = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter(hint, param_hint="'--scales'") from None
    if not scales or any(not x > 0 for x in scales):
        raise typer.BadParameter(hint, param_hint="'--scales'")
    return scales


@app.command("instant")
def instant(
    restaurants: Annotated[
        int | None, typer.Option(help="restaurants per demand model (default 6; 2 with --quick)")
    ] = None,
    days: Annotated[
        int | None, typer.Option(help="days per restaurant (default 10; 4 with --quick)")
    ] = None,
    warmup: Annotated[
        int, typer.Option(help="first days of each restaurant that only build history")
    ] = 2,
    model: Annotated[DemandModel, typer.Option(help="demand model")] = DemandModel.ALL,
    theta: Annotated[float, typer.Option(help="bid prices' multiplier")] = 1.0,
    forecast: Annotated[
        float, typer.Option(help="re-solved bid prices: demand forecast scale")
    ] = 1.0,
    resolve_every: Annotated[
        int, typer.Option(help="re-solved bid prices: requests between two solves of a service")
    ] = 10,
    scales: Annotated[
        str | None,
        typer.Option(
            metavar="LIST", help="sensitivity scales (default 0.5,0.75,0.9,1,1.1,1.25,1.5)"
        ),
    ] = None,
    sensitivity_every: Annotated[
        int, typer.Option(help="sensitivity runs on every n-th evaluated day (0: none)")
    ] = 4,
    workers: Annotated[int, typer.Option(help="processes (one restaurant at a time each)")] = 2,
    seed: Annotated[int, typer.Option()] = 1,
    quick: Annotated[
        bool, typer.Option("--quick", help="small restaurants, few days, for tests")
    ] = False,
    write_json: Annotated[
        bool,
        typer.Option("--json", help="print the figures as JSON on stdout (the tables on stderr)"),
    ] = False,
) -> None:
    """Instant admission that protects the peak: first-fit, the engine, flexible tables and
    bid prices against the hindsight optimum (a simulation, no database)."""
    restaurants = restaurants if restaurants is not None else (2 if quick else 6)
    days = days if days is not None else (4 if quick else 10)
    for name, value, least in (
        ("--restaurants", restaurants, 1),
        ("--warmup", warmup, 0),
        ("--days", days, warmup + 1),
        ("--resolve-every", resolve_every, 1),
        ("--sensitivity-every", sensitivity_every, 0),
        ("--workers", workers, 1),
    ):
        if value < least:
            raise typer.BadParameter(f"must be at least {least}", param_hint=f"'{name}'")
    from bench import instant as bench_instant

    settings = bench_instant.Settings(
        restaurants=restaurants,
        days=days,
        warmup=warmup,
        seed=seed,
        models=bench_instant.MODELS if model is DemandModel.ALL else (model.value,),
        theta=theta,
        forecast=forecast,
        resolve_every=resolve_every,
        scales=scale_list(scales) if scales is not None else bench_instant.SCALES,
        sensitivity_every=sensitivity_every,
        workers=workers,
        quick=quick,
        json=write_json,
    )
    raise typer.Exit(bench_instant.run(settings))


# ----------------------------------------------------------------------------------------
# Entry points


def run(argv: Sequence[str], prog_name: str = PROG) -> int:
    """Run one command line (``["pipeline", "--quick"]``) as the shell does and return its
    exit code (2: a usage error, already printed)."""
    try:
        app(args=list(argv), prog_name=prog_name)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


def main() -> None:
    """``python -m bench``: database and cluster errors become one-line messages, as under
    ``allocator``."""
    import psycopg
    from rich.console import Console

    from control.cluster import ClusterError
    from control.display import literal
    from control.errors import AllocatorError, translate

    console = Console()
    try:
        code = run(sys.argv[1:])
    except psycopg.Error as exc:
        err = translate(exc)
        label = err.sqlstate if isinstance(err, AllocatorError) else (exc.sqlstate or "error")
        console.print(f"[red]{literal(label)}[/red]: {literal(err, multiline=True)}")
        code = 1
    except (ClusterError, AllocatorError) as exc:
        console.print(f"[red]error[/red]: {literal(exc, multiline=True)}")
        code = 1
    sys.exit(code)
