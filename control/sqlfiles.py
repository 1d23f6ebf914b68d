"""SQL lives in files under sql/ and plpy_functions/; this module finds and runs them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from control.cluster import project_root


def sql_dir() -> Path:
    """The folder of the declared schema."""
    return project_root() / "sql"


def read_sql(name: str) -> str:
    """The text of sql/<name>."""
    return (sql_dir() / name).read_text()


def manifest() -> list[str]:
    """The files of the declared schema, in the order they are applied."""
    lines = (sql_dir() / "schema.manifest").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def plpy_dir() -> Path:
    """The folder of the Python modules PL/Python functions load."""
    return project_root() / "plpy_functions"


def run_sql_files(dbapi_connection: Any, names: list[str]) -> None:
    """Execute each sql/<name> on a psycopg connection, inside its current transaction.

    An entry ``plpy:<file>`` installs plpy_functions/<file> into allocator.plpy_modules
    under the file's stem, for PL/Python functions to load.
    """
    from control.queries import query

    with dbapi_connection.cursor() as cur:
        for name in names:
            if name.startswith("plpy:"):
                path = plpy_dir() / name.removeprefix("plpy:")
                source = path.read_text()
                digest = hashlib.sha256(source.encode()).hexdigest()
                cur.execute(query("install_plpy_module"), (path.stem, source, digest))
                continue
            # No parameters: psycopg sends the file as one simple query, all statements at once.
            cur.execute(read_sql(name).encode())
