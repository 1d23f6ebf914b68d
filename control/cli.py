"""The ``allocator`` command line."""

from __future__ import annotations

import os
import shutil
import sys
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
app.add_typer(db_app, name="db")
app.add_typer(migrate_app, name="migrate")
app.add_typer(layout_app, name="layout")

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
def migrate_up(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    migrations.upgrade(revision)


@migrate_app.command("down")
def migrate_down(revision: str = "base") -> None:
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
def demo() -> None:
    """Start the database, migrate, load the sample restaurant and print its layout."""
    url = database_url()
    console.print(f"[bold]database[/bold] {url}")
    migrations.upgrade("head")
    console.print("[bold]migrated[/bold] to head")
    with connect(url) as conn:
        restaurant_id = load_layout(conn, project_root() / SAMPLE_LAYOUT, replace=True)
        show_layout(conn, restaurant_id, console)


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
