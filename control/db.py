"""Where the database is, and connections to it.

``DATABASE_URL`` points every command and test at any PostgreSQL 15+; without it the
project's embedded cluster is used and started on demand.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg

from control.cluster import Cluster


def database_url(*, start: bool = True) -> str:
    """The URL of the project database (DATABASE_URL, else the embedded cluster)."""
    env = os.environ.get("DATABASE_URL")
    if env:
        return env
    cluster = Cluster.for_project()
    if start:
        cluster.start()
    return cluster.url()


def connect(
    url: str | None = None, *, autocommit: bool = False
) -> psycopg.Connection[tuple[Any, ...]]:
    """A new connection to the project database."""
    return psycopg.connect(url or database_url(), autocommit=autocommit)
