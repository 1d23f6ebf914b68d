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
from alembic.util import CommandError
from rich.console import Console

from control import migrate as migrations
from control.cluster import Cluster, ClusterError, project_root
from control.db import connect, database_url
from control.display import cell, literal, visible
from control.errors import AllocatorError, translate
from control.layout import LayoutFileError, load_layout, show_layout

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
import_app = typer.Typer(help="Bring data in from another system.", no_args_is_help=True)
staff_app = typer.Typer(
    help="Staff accounts of the console and the HTTP API.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(migrate_app, name="migrate")
app.add_typer(layout_app, name="layout")
app.add_typer(schedule_app, name="schedule")
app.add_typer(events_app, name="events")
app.add_typer(booking_app, name="booking")
app.add_typer(metrics_app, name="metrics")
app.add_typer(import_app, name="import")
app.add_typer(staff_app, name="staff")

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
    console.print(("started" if started else "already running") + f": {literal(cluster.url())}")


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
        console.print(
            f"running: {literal(cluster.url())} "
            f"(data {literal(cluster.data_dir)}, log {literal(cluster.log_file)})"
        )
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


@migrate_app.command("new")
def migrate_new(message: Annotated[str, typer.Argument(help="What the revision changes.")]) -> None:
    """Start a revision of the state (tables, columns, indexes, seed rows) after head: writes
    NNNN_slug.py, NNNN_slug.sql and NNNN_slug.down.sql; fill in the two SQL files."""
    for path in migrations.new_revision(message):
        typer.echo(f"created: {path}")


@migrate_app.command("release")
def migrate_release() -> None:
    """At a release: record every revision not yet in control/migrations/released.lock, so a
    test fails if it ever changes. Run from a source checkout."""
    from control.sqlfiles import release_migrations

    added = release_migrations()
    typer.echo("recorded: " + ", ".join(added) if added else "every revision is already recorded")


@layout_app.command("load")
def layout_load(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    replace: Annotated[
        bool, typer.Option(help="Delete restaurants of the same name first.")
    ] = False,
) -> None:
    """Create a restaurant from a layout JSON file and print it."""
    with connect() as conn:
        try:
            restaurant_id = load_layout(conn, path, replace=replace)
        except LayoutFileError as exc:
            typer.echo(visible(exc), err=True)
            raise typer.Exit(2) from exc
        show_layout(conn, restaurant_id, console)


@layout_app.command("show")
def layout_show(restaurant_id: int) -> None:
    """Print a restaurant's tables and combinations (exit 1 when there is no such one)."""
    with connect() as conn:
        if not show_layout(conn, restaurant_id, console):
            raise typer.Exit(1)


@app.command("demo")
def demo(
    bookings: Annotated[int, typer.Option(min=0, help="How many guests search and book.")] = 500,
    workers: Annotated[int, typer.Option(min=1, max=64, help="How many worker processes.")] = 2,
    serve: Annotated[
        bool,
        typer.Option(help="Then leave the staff console running on the demo's data (Ctrl-C ends)."),
    ] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="The console's port.")] = 8187,
) -> None:
    """The main job: database, migrations, sample restaurant, workers, guests booking."""
    from control.demo import run_demo

    url = database_url()
    console.print(f"[bold]database[/bold] {literal(url)}")
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
    booked = report["guests"]["booked"]
    settled = (
        report["bookings"] == booked
        and report["confirmed"] + report["manual_review"] + report["failed"] == booked
    )
    problems = [
        what
        for failed, what in (
            (report["duplicate_processing"], "duplicate processing"),
            (report["overlapping_allocations"], "overlapping allocations"),
            (any(report["worker_exit_codes"]), "a worker exited with a non-zero code"),
            (report["optimizer"]["violations"], "invariant violations"),
            (not settled, "not every booking settled"),
        )
        if failed
    ]
    if problems:
        console.print(f"[red]failed[/red]: {literal('; '.join(problems))}")
        raise typer.Exit(1)
    if serve:
        _serve_demo(url, restaurant_id, port)


def _serve_demo(url: str, restaurant_id: int, port: int) -> None:
    """The console on the demo's data, with a staff member "demo" for its restaurant."""
    import secrets

    from control.queries import query
    from control.web.auth import hash_password
    from control.web.serve import serve as run

    password = secrets.token_urlsafe(9)
    with connect(url) as conn:
        known = conn.execute(query("staff_members")).fetchall()
        params = {"login": "demo", "display_name": "Demo staff",
                  "password_hash": hash_password(password), "restaurant_ids": [restaurant_id]}
        if any(row[0] == "demo" for row in known):
            conn.execute(query("set_staff_password"), params)
            conn.execute(query("set_staff_restaurants"), params)
        else:
            conn.execute(query("add_staff"), params)
        busiest = conn.execute(query("busiest_day"), {"restaurant_id": restaurant_id}).fetchone()
    day = f"?date={busiest[0].isoformat()}" if busiest else ""
    console.print(
        f"[bold]console[/bold] http://127.0.0.1:{port}/{day}  sign in as [bold]demo[/bold] with "
        f"password [bold]{password}[/bold]  (API reference: /docs; Ctrl-C stops it)"
    )
    run(url, "127.0.0.1", port, project_root() / "var" / "console-secret")


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
    smtp: Annotated[
        str | None,
        typer.Option(help="HOST:PORT of an SMTP server that receives customer notifications."),
    ] = None,
    mail_from: Annotated[
        str, typer.Option(help="Sender address of mailed notifications.")
    ] = "bookings@localhost",
    mail_lease_seconds: Annotated[
        int,
        typer.Option(
            min=1, max=3600, help="How long a mail claim lasts before another sender may take it."
        ),
    ] = 60,
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
    from control.mail import MailConfig
    from control.worker import Worker, WorkerConfig, configure_logging

    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise typer.BadParameter(
            f"{visible(log_level)!r} is not one of DEBUG, INFO, WARNING, ERROR",
            param_hint="'--log-level'",
        )
    configure_logging(log_level.upper())
    mail = None
    if smtp is not None:
        host, _, port = smtp.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise typer.BadParameter(f"{visible(smtp)!r} is not HOST:PORT", param_hint="'--smtp'")
        if "@" not in mail_from:
            raise typer.BadParameter(
                f"{visible(mail_from)!r} is not an address", param_hint="'--mail-from'"
            )
        mail = MailConfig(host, int(port), mail_from, lease_seconds=mail_lease_seconds)
    config = WorkerConfig(
        concurrency=concurrency,
        poll_interval=poll_interval,
        batch=batch,
        notifications=notifications,
        mail=mail,
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
    import signal
    import threading

    from control.queries import query

    # Ctrl-C (or SIGTERM) ends the loop between two reads. A KeyboardInterrupt raised inside
    # psycopg's wait for notifications would make it cancel a query that does not exist and
    # wait for the socket again, possibly for ever.
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with connect(database_url(), autocommit=True) as conn:
        conn.execute("listen allocator_events")
        row = None if from_start else conn.execute(query("events_position")).fetchone()
        position = {"xact": "0", "after": 0}
        if row is not None:
            position = {"xact": str(row[0]), "after": int(row[1])}
        while not stop.is_set():
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
            # Woken by a new booking's NOTIFY, else a poll a second later: most events (a
            # worker's transitions) send none.
            for _ in conn.notifies(timeout=1.0, stop_after=1):
                pass


@schedule_app.command("install")
def schedule_install() -> None:
    """Create or update the pg_cron jobs (idempotent)."""
    from control import schedule

    with connect(database_url()) as conn:
        installed, removed = schedule.install(conn)
    for job_name in installed:
        console.print(f"installed {literal(job_name)}")
    for job_name in removed:
        console.print(f"removed {literal(job_name)}")


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
        grid.add_row(*(cell(v) for v in row))
    console.print(grid)


@schedule_app.command("remove")
def schedule_remove() -> None:
    """Remove every allocator pg_cron job."""
    from control import schedule

    with connect(database_url()) as conn:
        for job_name in schedule.remove(conn):
            console.print(f"removed {literal(job_name)}")


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


ISO_FORMATS = [
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%d %H:%M%z",
]


@app.command("floor")
def floor(
    restaurant: Annotated[int, typer.Option(help="Restaurant id.")],
    at: Annotated[
        datetime | None,
        typer.Option(
            formats=ISO_FORMATS,
            help="Instant, ISO 8601 with its UTC offset (default: now).",
        ),
    ] = None,
) -> None:
    """Each table now (or at --at): free, held, booked, late, seated; who is next."""
    from zoneinfo import ZoneInfo

    from rich.table import Table

    from control.queries import query

    with connect(database_url()) as conn:
        zone_row = conn.execute(query("restaurant_timezone"), (restaurant,)).fetchone()
        if zone_row is None:
            console.print(f"[red]no restaurant {restaurant}[/red]")
            raise typer.Exit(1)
        rows = conn.execute(query("floor"), (restaurant, at)).fetchall()
    local = ZoneInfo(zone_row[0])

    def hhmm(instant: datetime | None) -> str | None:
        return instant.astimezone(local).strftime("%H:%M") if instant else None

    grid = Table(
        title=f"floor of restaurant {restaurant}"
        + (f" at {at.isoformat()}" if at else "")
        + f" (times in {zone_row[0]})"
    )
    for header in [
        "table",
        "zone",
        "status",
        "booking",
        "party",
        "frees at",
        "next",
        "next at",
        "party",
    ]:
        grid.add_column(header)
    for label, zone, status, booking, party, late, frees, nxt, next_at, next_party in rows:
        shown = f"{status} (late)" if late else status
        values = (label, zone, shown, booking, party, hhmm(frees), nxt, hhmm(next_at), next_party)
        grid.add_row(*(cell(v) for v in values))
    console.print(grid)


@app.command("shadow")
def shadow(
    days: Annotated[
        float, typer.Option(min=0.01, max=366, help="How many days back to report.")
    ] = 7.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead.")] = False,
) -> None:
    """Shadow mode per restaurant: the engine's decisions beside the legacy planner's."""
    import json

    from rich.table import Table

    from control.queries import query

    columns = [
        "restaurant_id",
        "decisions",
        "agreements",
        "agreement_rate",
        "engine_seated",
        "legacy_seated",
        "engine_covers",
        "legacy_covers",
        "errors",
    ]
    with connect(database_url()) as conn:
        rows = conn.execute(query("shadow_report"), (days,)).fetchall()
    if as_json:
        for row in rows:
            print(json.dumps(dict(zip(columns, row, strict=True)), default=str))
        return
    grid = Table(title=f"shadow mode, last {days:g} days: engine beside the legacy planner")
    for header in [
        "restaurant",
        "decisions",
        "agreed",
        "agreed\nshare",
        "engine\nseats",
        "legacy\nseats",
        "engine\ncovers",
        "legacy\ncovers",
        "engine\nerrors",
    ]:
        grid.add_column(header, justify="right")
    for row in rows:
        grid.add_row(*(cell(v) for v in row))
    console.print(grid)
    if not rows:
        console.print("no shadow decisions in that time (flags.shadow is off everywhere?)")


@app.command("docs")
def docs(
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 and show the diff if out of date."),
    ] = False,
    path: Annotated[
        Path | None, typer.Option(help="The Markdown file (default: docs/api.md).")
    ] = None,
    snapshot: Annotated[
        Path | None, typer.Option(help="The schema snapshot (default: docs/schema.sql).")
    ] = None,
) -> None:
    """Regenerate the reference part of docs/api.md and the schema snapshot docs/schema.sql
    from the catalog of a scratch database that a fresh `migrate up` builds on the same
    server (then dropped); the hand-written part of api.md above the markers stays as it is."""
    from control.apidocs import api_doc_diff, update_api_doc
    from control.snapshot import schema_snapshot, scratch_database

    target = path or project_root() / "docs" / "api.md"
    snapshot_path = snapshot or project_root() / "docs" / "schema.sql"
    stale: list[str] = []
    with scratch_database(database_url()) as url:
        migrations.upgrade("head", url=url)
        with connect(url) as conn:
            if check:
                diff = api_doc_diff(conn, target)
                if diff:
                    typer.echo("\n".join(diff))
                    stale.append(str(target))
            else:
                changed = update_api_doc(conn, target)
                typer.echo(f"{'updated' if changed else 'unchanged'}: {target}")
        dumped = schema_snapshot(url)
    current = snapshot_path.read_text() if snapshot_path.exists() else ""
    if check:
        if current != dumped:
            stale.append(str(snapshot_path))
        if stale:
            typer.echo(f"out of date: {', '.join(stale)}: run `allocator docs`", err=True)
            raise typer.Exit(1)
        typer.echo(f"up to date: {target}, {snapshot_path}")
        return
    if current != dumped:
        snapshot_path.write_text(dumped)
    typer.echo(f"{'updated' if current != dumped else 'unchanged'}: {snapshot_path}")


@booking_app.command("create")
def booking_create(
    restaurant: Annotated[int, typer.Option(help="Restaurant id.")],
    party: Annotated[int, typer.Option(help="Party size.")],
    start: Annotated[
        datetime,
        typer.Option(
            formats=ISO_FORMATS,
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


@import_app.command("bookings")
def import_bookings(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="CSV with a header line, or JSON lines (.jsonl): external_id, party_size, start, "
            "and optionally duration_minutes, zone, tables (labels joined by '+'); other "
            "columns go into the booking's metadata.",
        ),
    ],
    restaurant: Annotated[int, typer.Option(help="Restaurant id.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row, import nothing.")
    ] = False,
) -> None:
    """Import a restaurant's existing bookings, idempotent by external_id: rows with tables
    arrive confirmed on them, others are queued for assignment. When any row is refused
    (a double booking, a bad value), nothing is imported and each refusal is listed."""
    from control.imports import ImportFileError, read_rows
    from control.imports import import_bookings as run_import

    try:
        rows = read_rows(file)
    except ImportFileError as exc:
        typer.echo(visible(exc), err=True)
        raise typer.Exit(2) from exc
    with connect(database_url()) as conn:
        report = run_import(conn, restaurant, rows, dry_run=dry_run)
    for refusal in report.refused:
        detail = f" ({refusal['detail']})" if refusal.get("detail") else ""
        typer.echo(
            visible(
                f"row {refusal['row']} external_id={refusal['external_id']}: "
                f"{refusal['sqlstate']} {refusal['reason']}{detail}"
            ),
            err=True,
        )
    verb = "imported" if report.committed else "would import"
    typer.echo(
        f"{report.rows} rows: {verb} {report.imported}, already there {report.existing}, "
        f"refused {len(report.refused)}"
    )
    if report.refused:
        typer.echo("nothing was imported: fix or remove the refused rows and run again", err=True)
        raise typer.Exit(1)


@metrics_app.command("serve")
def metrics_serve(
    port: Annotated[int, typer.Option(min=1, max=65535, help="HTTP port.")] = 10187,
    address: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    top_restaurants: Annotated[
        int,
        typer.Option(
            min=0,
            max=1000,
            help="Restaurants (most bookings first) with a label of their own; the rest "
            "are labelled other.",
        ),
    ] = 20,
) -> None:
    """Serve Prometheus metrics read from the metrics views."""
    from control.metrics import serve

    serve(database_url(), address, port, top_restaurants)


def _password(prompt: bool, password_stdin: bool) -> str:
    """A new password from stdin (one line) or asked twice at the terminal."""
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not prompt:
        raise typer.BadParameter("give --password-stdin, or run at a terminal to be asked")
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


def _hash(password: str) -> str:
    from control.web.auth import hash_password

    try:
        return hash_password(password)
    except ValueError as exc:
        console.print(f"[red]error[/red]: {literal(exc)}")
        raise typer.Exit(1) from None


def _show_staff(info: dict[str, object]) -> None:
    ids = info.get("restaurant_ids") or []
    assert isinstance(ids, list)
    console.print(
        f"{literal(info['login'])} ({literal(info['display_name'])}): restaurants "
        f"{', '.join(str(i) for i in ids) or 'none'}"
        + (" [red]disabled[/red]" if info.get("disabled_at") else "")
    )


def _staff_change(name: str, **params: object) -> None:
    """Run one of the staff functions and show the member as it is now."""
    from control.queries import query

    with connect() as conn:
        row = conn.execute(query(name), params).fetchone()
    assert row is not None
    _show_staff(row[0])


@staff_app.command("add")
def staff_add(
    login: Annotated[str, typer.Argument(help="Sign-in name: a-z, 0-9 and . _ @ -.")],
    restaurant: Annotated[
        list[int], typer.Option("--restaurant", "-r", help="A restaurant they work for (repeat).")
    ],
    name: Annotated[str | None, typer.Option(help="Display name (default: the login).")] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Add a staff member: argon2id password hash, restaurants they see and act on."""

    password = _password(sys.stdin.isatty(), password_stdin)
    _staff_change("add_staff", login=login, display_name=name or login,
                  password_hash=_hash(password), restaurant_ids=restaurant)


@staff_app.command("password")
def staff_password(
    login: str,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Set a staff member's password; their open sessions end."""

    password = _password(sys.stdin.isatty(), password_stdin)
    _staff_change("set_staff_password", login=login, password_hash=_hash(password))


@staff_app.command("restaurants")
def staff_restaurants(
    login: str,
    restaurant: Annotated[
        list[int], typer.Option("--restaurant", "-r", help="A restaurant they work for (repeat).")
    ],
) -> None:
    """Replace the restaurants a staff member works for."""

    _staff_change("set_staff_restaurants", login=login, restaurant_ids=restaurant)


@staff_app.command("disable")
def staff_disable(login: str) -> None:
    """Disable a staff member: sessions and API tokens stop working at once."""

    _staff_change("disable_staff", login=login)


@staff_app.command("token")
def staff_token(
    login: str,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "api",
    days: Annotated[int, typer.Option(min=1, max=366, help="Days until it expires.")] = 90,
) -> None:
    """Issue an API token (printed once; only its SHA-256 is stored)."""
    from control.queries import query
    from control.web.auth import new_token

    token, digest = new_token()
    with connect() as conn:
        conn.execute(query("issue_staff_token"), {
            "login": login, "digest": digest, "label": label, "days": days})
    typer.echo(token)


@staff_app.command("list")
def staff_list() -> None:
    """Every staff member: restaurants, disabled, live API tokens."""
    from control.queries import query

    with connect() as conn:
        rows = conn.execute(query("staff_members")).fetchall()
    for login, name, ids, disabled, tokens in rows:
        console.print(
            f"{literal(login)} ({literal(name)}): "
            f"restaurants {', '.join(map(str, ids)) or 'none'}, "
            f"{tokens} API token{'s' if tokens != 1 else ''}"
            + (" [red]disabled[/red]" if disabled else "")
        )


@app.command("serve")
def serve(
    port: Annotated[int, typer.Option(min=1, max=65535, help="HTTP port.")] = 8187,
    address: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    https_only: Annotated[
        bool, typer.Option(help="Send the session cookie over HTTPS only (behind TLS).")
    ] = False,
) -> None:
    """Serve the staff console and the HTTP API (OpenAPI at /docs)."""
    from control.web.serve import serve as run

    console.print(f"[bold]console[/bold] http://{address}:{port}/ (API reference: /docs)")
    run(database_url(), address, port, project_root() / "var" / "console-secret",
        https_only=https_only)


def _bench_app() -> typer.Typer | None:
    """The benchmarks' command line, package ``bench`` of a source checkout (the installed
    package holds no benchmarks): importable as it is, or from project_root(); else None."""
    root = project_root()
    for attempt in range(2):
        if attempt:
            if str(root) in sys.path or not (root / "bench" / "__init__.py").is_file():
                return None
            sys.path.append(str(root))
        try:
            from bench.cli import app as bench_cli
        except ModuleNotFoundError as exc:
            if exc.name not in ("bench", "bench.cli"):
                raise
            continue
        return bench_cli
    return None


_bench = _bench_app()
if _bench is not None:
    app.add_typer(_bench, name="bench")
else:

    @app.command(
        "bench",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )
    def bench_unavailable() -> None:
        """Benchmarks that print figures (from a source checkout)."""
        typer.echo(
            "benchmarks run from a source checkout: python -m bench pipeline|quality ... "
            "(or allocator bench ... there)",
            err=True,
        )
        raise typer.Exit(2)


def main() -> None:
    """Console-script entry point: runs the CLI and turns known errors into messages."""
    try:
        app()
    except psycopg.Error as exc:
        err = translate(exc)
        label = err.sqlstate if isinstance(err, AllocatorError) else (exc.sqlstate or "error")
        console.print(f"[red]{literal(label)}[/red]: {literal(err, multiline=True)}")
        sys.exit(1)
    except (ClusterError, AllocatorError, CommandError, OSError) as exc:
        # A database, cluster or migration refusal, or a file or address that cannot be used.
        console.print(f"[red]error[/red]: {literal(exc, multiline=True)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
