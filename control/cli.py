"""The ``allocator`` command line."""

from __future__ import annotations

import os
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console

from control import migrate as migrations
from control.cluster import Cluster, ClusterError, project_root
from control.db import connect, database_url
from control.errors import AllocatorError, translate
from control.layout import load_layout, show_layout

app = typer.Typer(
    help="allocator: restaurant bookings assigned to tables, owned by PostgreSQL.",
    no_args_is_help=True,
)
db_app = typer.Typer(help="The embedded PostgreSQL cluster (.pgdata/).", no_args_is_help=True)
migrate_app = typer.Typer(help="Schema migrations (alembic).", no_args_is_help=True)
layout_app = typer.Typer(help="Restaurant layouts: tables, zones, adjacency.", no_args_is_help=True)
schedule_app = typer.Typer(
    help="pg_cron schedules for sweeps and the optimizer.", no_args_is_help=True
)
events_app = typer.Typer(help="The events outbox.", no_args_is_help=True)
booking_app = typer.Typer(help="Bookings from the command line.", no_args_is_help=True)
metrics_app = typer.Typer(help="Metrics for Prometheus.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(migrate_app, name="migrate")
app.add_typer(layout_app, name="layout")
app.add_typer(schedule_app, name="schedule")
app.add_typer(events_app, name="events")
app.add_typer(booking_app, name="booking")
app.add_typer(metrics_app, name="metrics")
app.add_typer(bench_app, name="bench")

console = Console()
SAMPLE_LAYOUT = Path("data") / "sample_restaurant.json"


def _external() -> bool:
    return bool(os.environ.get("DATABASE_URL"))


@db_app.command("start")
def db_start() -> None:
    """Start the embedded cluster (initialising it on first use); idempotent."""
    if _external():
        console.print("DATABASE_URL is set; the embedded cluster is not used.")
        return
    cluster = Cluster.for_project()
    started = cluster.start()
    console.print(("started" if started else "already running") + f": {cluster.url()}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster; its data stays in .pgdata/."""
    stopped = Cluster.for_project().stop()
    console.print("stopped" if stopped else "not running")


@db_app.command("status")
def db_status() -> None:
    """Say whether the embedded cluster is running (exit 1 when it is not)."""
    cluster = Cluster.for_project()
    if cluster.running():
        console.print(f"running: {cluster.url()} (data {cluster.data_dir}, log {cluster.log_file})")
        return
    console.print("initialised, not running" if cluster.initialized else "not initialised")
    raise typer.Exit(1)


@db_app.command("url")
def db_url() -> None:
    """Print the database URL every command uses."""
    print(database_url(start=False))


@db_app.command("psql")
def db_psql(args: Annotated[list[str] | None, typer.Argument()] = None) -> None:
    """Open psql on the project database (extra arguments go to psql)."""
    psql = shutil.which("psql")
    if psql is None:
        raise ClusterError("psql not found; run `make setup`")
    os.execv(psql, [psql, database_url(), *(args or [])])


@migrate_app.command("up")
def migrate_up(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    migrations.upgrade(revision)


@migrate_app.command("down")
def migrate_down(revision: Annotated[str, typer.Argument()] = "base") -> None:
    """Revert migrations down to REVISION (default: an empty database)."""
    migrations.downgrade(revision)


@migrate_app.command("current")
def migrate_current() -> None:
    """Print the revision the database is at."""
    migrations.current()


@migrate_app.command("history")
def migrate_history() -> None:
    """List the revisions."""
    migrations.history()


@layout_app.command("load")
def layout_load(
    path: Path,
    replace: Annotated[
        bool, typer.Option(help="Delete restaurants of the same name first.")
    ] = False,
) -> None:
    """Create a restaurant from a layout JSON file and print it."""
    with connect() as conn:
        restaurant_id = load_layout(conn, path, replace=replace)
        show_layout(conn, restaurant_id, console)


@layout_app.command("show")
def layout_show(restaurant_id: int) -> None:
    """Print a restaurant's tables and combinations."""
    with connect() as conn:
        show_layout(conn, restaurant_id, console)


@app.command("demo")
def demo(
    bookings: Annotated[int, typer.Option(help="How many bookings to push.")] = 500,
    workers: Annotated[int, typer.Option(help="How many worker processes.")] = 2,
) -> None:
    """The main job: database, migrations, sample restaurant, workers, a burst of bookings."""
    from control.demo import run_demo

    url = database_url()
    console.print(f"[bold]database[/bold] {url}")
    migrations.upgrade("head")
    console.print("[bold]migrated[/bold] to head")
    with connect(url) as conn:
        restaurant_id = load_layout(conn, project_root() / SAMPLE_LAYOUT, replace=True)
        show_layout(conn, restaurant_id, console)
    report = run_demo(
        url,
        restaurant_id,
        "Europe/Rome",
        console,
        project_root() / "var" / "demo",
        count=bookings,
        workers=workers,
    )
    problems = (
        report["duplicate_processing"]
        or report["overlapping_allocations"]
        or any(report["worker_exit_codes"])
        or report["optimizer"]["violations"]
    )
    settled = (
        report["bookings"] == bookings
        and report["confirmed"] + report["manual_review"] + report["failed"] == bookings
    )
    if problems or not settled:
        raise typer.Exit(1)


@app.command("optimize")
def optimize(
    restaurant: Annotated[int, typer.Option(help="Restaurant id.")],
    date: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Local day, YYYY-MM-DD.")],
    apply: Annotated[
        bool, typer.Option("--apply", help="Apply the plan if it clears the threshold.")
    ] = False,
    min_improvement: Annotated[
        float, typer.Option(help="Threshold for --apply (0.10 = 10%).")
    ] = 0.10,
    time_limit_ms: Annotated[int, typer.Option(help="Solver time limit.")] = 2000,
) -> None:
    """Re-plan a restaurant's day with optimize_day; with --apply, apply the plan."""
    import json

    from control.queries import query

    with connect(database_url()) as conn:
        row = conn.execute(
            query("optimize_day"), (restaurant, date.date(), time_limit_ms)
        ).fetchone()
        assert row is not None
        plan = row[0]
        summary = {
            k: plan[k]
            for k in (
                "bookings",
                "covers_before",
                "covers_after",
                "unassigned_before",
                "unassigned_after",
                "improvement",
                "solver",
                "status",
                "blocks",
                "solve_ms",
                "call_ms",
            )
        }
        summary["moves"] = len(plan["moves"])
        summary["seat"] = len(plan["seat"])
        print(json.dumps(summary))
        if apply:
            applied = conn.execute(
                query("apply_plan"), (restaurant, date.date(), json.dumps(plan), min_improvement)
            ).fetchone()
            conn.commit()
            assert applied is not None
            print(json.dumps(applied[0]))


@app.command("worker")
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Processor threads.")] = 2,
    name: Annotated[str | None, typer.Option(help="Worker name (default host:pid).")] = None,
    poll_interval: Annotated[float, typer.Option(min=0.05, help="Seconds between polls.")] = 1.0,
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Bookings claimed at once.")] = 10,
    notifications: Annotated[
        Path | None, typer.Option(help="JSON-lines file that receives customer notifications.")
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
    lease_seconds: Annotated[
        int,
        typer.Option(
            min=3,
            max=3600,
            help="TTL of the worker's name lease, extended every third of it. A worker "
            "started with the name of a live one exits with code 3.",
        ),
    ] = 15,
) -> None:
    """Process bookings: LISTEN allocator_events, claim due work, call process_booking."""
    from control.worker import Worker, WorkerConfig, configure_logging

    configure_logging(log_level.upper())
    config = WorkerConfig(
        concurrency=concurrency,
        poll_interval=poll_interval,
        batch=batch,
        notifications=notifications,
        worker_lease_seconds=lease_seconds,
    )
    if name:
        config.name = name
    runner = Worker(database_url(), config)
    runner.install_signal_handlers()
    raise typer.Exit(runner.run())


@events_app.command("tail")
def events_tail(
    from_start: Annotated[bool, typer.Option(help="Print past events first.")] = False,
) -> None:
    """Print events as JSON lines as they happen (Ctrl-C to stop)."""
    import json

    from control.queries import query

    with connect(database_url(), autocommit=True) as conn:
        conn.execute("listen allocator_events")
        row = None if from_start else conn.execute(query("events_position")).fetchone()
        position = {"xact": "0", "after": 0}
        if row is not None:
            position = {"xact": str(row[0]), "after": int(row[1])}
        try:
            while True:
                for event_id, restaurant_id, topic, booking_id, payload, at, xact in conn.execute(
                    query("events_after"), position
                ).fetchall():
                    print(
                        json.dumps(
                            {
                                "id": event_id,
                                "restaurant_id": restaurant_id,
                                "topic": topic,
                                "booking_id": booking_id,
                                "payload": payload,
                                "at": at,
                            },
                            default=str,
                        ),
                        flush=True,
                    )
                    position = {"xact": str(xact), "after": int(event_id)}
                for _ in conn.notifies(timeout=1.0, stop_after=1):
                    pass
        except KeyboardInterrupt:
            return


@schedule_app.command("install")
def schedule_install() -> None:
    """Create or update the pg_cron jobs (idempotent)."""
    from control import schedule

    with connect(database_url()) as conn:
        installed, removed = schedule.install(conn)
    for job_name in installed:
        console.print(f"installed {job_name}")
    for job_name in removed:
        console.print(f"removed {job_name}")


@schedule_app.command("list")
def schedule_list() -> None:
    """List the allocator pg_cron jobs."""
    from rich.table import Table

    from control import schedule

    with connect(database_url()) as conn:
        rows = schedule.jobs(conn)
    grid = Table(title="pg_cron jobs (UTC)")
    for column in ("id", "name", "schedule", "command", "active"):
        grid.add_column(column)
    for row in rows:
        grid.add_row(*(str(v) for v in row))
    console.print(grid)


@schedule_app.command("remove")
def schedule_remove() -> None:
    """Remove every allocator pg_cron job."""
    from control import schedule

    with connect(database_url()) as conn:
        for job_name in schedule.remove(conn):
            console.print(f"removed {job_name}")


@app.command("status")
def status() -> None:
    """Queue depth, bookings per state, circuit breakers, workers and leases."""
    from control.status import print_status

    with connect(database_url()) as conn:
        print_status(conn, console)


@app.command("inspect")
def inspect(booking_id: int) -> None:
    """A booking and its timeline: history, attempts, holds."""
    from control.status import print_booking

    with connect(database_url()) as conn:
        if not print_booking(conn, booking_id, console):
            raise typer.Exit(1)


@booking_app.command("create")
def booking_create(
    restaurant: Annotated[int, typer.Option(help="Restaurant id.")],
    party: Annotated[int, typer.Option(help="Party size.")],
    start: Annotated[
        datetime,
        typer.Option(
            formats=[
                "%Y-%m-%dT%H:%M:%S%z",
                "%Y-%m-%dT%H:%M%z",
                "%Y-%m-%d %H:%M:%S%z",
                "%Y-%m-%d %H:%M%z",
            ],
            help="Start time, ISO 8601 with its UTC offset (2027-03-01T19:00+01:00).",
        ),
    ],
    duration: Annotated[int | None, typer.Option(help="Minutes (default: turn time).")] = None,
    key: Annotated[str | None, typer.Option(help="Idempotency key.")] = None,
    zone: Annotated[str | None, typer.Option(help="Preferred zone name.")] = None,
) -> None:
    """Create a booking and print the result."""
    import json

    from control.queries import query

    with connect(database_url()) as conn:
        row = conn.execute(
            query("create_booking"), (restaurant, party, start, duration, key, zone)
        ).fetchone()
        conn.commit()
    print(json.dumps(row[0] if row else None, default=str))


@metrics_app.command("serve")
def metrics_serve(
    port: Annotated[int, typer.Option(help="HTTP port.")] = 9187,
    address: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
) -> None:
    """Serve Prometheus metrics read from the metrics views."""
    from control.metrics import serve

    serve(database_url(), address, port)


@bench_app.command(
    "quality", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def bench_quality(ctx: typer.Context) -> None:
    """Seated covers: legacy first-fit, the online engine, optimize_day, the hindsight optimum."""
    from control.bench.quality import main as quality_main

    raise typer.Exit(quality_main(list(ctx.args)))


@bench_app.command(
    "pipeline", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def bench_pipeline(ctx: typer.Context) -> None:
    """Burst, steady and contention runs of the pipeline, against pgbench on the same cluster."""
    from control.bench.pipeline import main as pipeline_main

    raise typer.Exit(pipeline_main(list(ctx.args)))


def main() -> None:
    """Console-script entry point: runs the CLI and turns known errors into messages."""
    try:
        app()
    except psycopg.Error as exc:
        err = translate(exc)
        label = err.sqlstate if isinstance(err, AllocatorError) else (exc.sqlstate or "error")
        console.print(f"[red]{label}[/red]: {err}")
        sys.exit(1)
    except (ClusterError, AllocatorError) as exc:
        console.print(f"[red]error[/red]: {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
