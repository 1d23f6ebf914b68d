"""Running the console: the pool, the application and uvicorn in one process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from control.web import auth
from control.web.app import create_app
from control.web.db import ConsoleDB, console_conninfo


def server(
    url: str, address: str, port: int, secret_file: Path, *, https_only: bool = False
) -> tuple[uvicorn.Server, ConsoleDB]:
    """A uvicorn server for the console (not yet running) and the pool it uses."""
    conninfo = console_conninfo(url)
    db = ConsoleDB.open(conninfo)
    app = create_app(db, auth.secret_key(secret_file), conninfo=conninfo, https_only=https_only)
    config = uvicorn.Config(
        app,
        host=address,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=2,
        proxy_headers=False,
        access_log=False,
    )
    return uvicorn.Server(config), db


def serve(
    url: str, address: str, port: int, secret_file: Path, *, https_only: bool = False
) -> None:
    """Serve until interrupted."""
    srv, db = server(url, address, port, secret_file, https_only=https_only)
    try:
        srv.run()
    finally:
        db.close()


@contextmanager
def running(url: str, address: str, port: int, secret_file: Path) -> Iterator[str]:
    """The console served from a thread while the block runs; yields its base URL."""
    srv, db = server(url, address, port, secret_file)
    thread = threading.Thread(target=srv.run, name="console", daemon=True)
    thread.start()
    try:
        while not srv.started and thread.is_alive():
            threading.Event().wait(0.05)
        yield f"http://{address}:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)
        db.close()
