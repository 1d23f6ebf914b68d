"""The two kinds of SQL: migrations (state, run once) and code (re-applied when it changes).

Migrations are alembic revisions in control/migrations/versions/, each with its SQL beside it
(``NNNN_name.sql`` and ``NNNN_name.down.sql``); a released one never changes
(control/migrations/released.lock). Code is control/sql/: functions, procedures, views,
triggers and policies written as ``create or replace``, applied in manifest order, then the
privileges of control/sql/grants.toml. Both ship inside the package and are read with
importlib.resources, so an installed wheel migrates a database without the source tree.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from psycopg import sql

from control.queries import query

#: The roles the grant list may name; everything else keeps no privilege on the schema.
ROLES = ("allocator_app", "allocator_console", "allocator_ops", "allocator_readonly")


def code_dir() -> Traversable:
    """The folder of the schema's code (control/sql/)."""
    return files("control") / "sql"


def migrations_dir() -> Traversable:
    """The folder of the alembic revisions and their SQL."""
    return files("control") / "migrations" / "versions"


def read_code(name: str) -> str:
    """The text of control/sql/<name>."""
    return (code_dir() / name).read_text()


def manifest() -> list[str]:
    """The code files, in the order they are applied (``plpy:<file>`` names a solver module)."""
    lines = read_code("manifest").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def plpy_source(name: str) -> str:
    """The text of plpy_functions/<name>, a module PL/Python functions load."""
    return (files("plpy_functions") / name).read_text()


@dataclass(frozen=True)
class Grants:
    """The grant list: function -> roles that may execute it; relation -> roles that read it."""

    execute: dict[str, tuple[str, ...]]
    select: dict[str, tuple[str, ...]]

    def callers(self, function: str) -> tuple[str, ...]:
        """The roles that may execute ``function`` (none when it is not listed)."""
        return self.execute.get(function, ())


@cache
def grants() -> Grants:
    """control/sql/grants.toml, checked: only the project's roles, each listed once."""
    data: dict[str, Any] = tomllib.loads(read_code("grants.toml"))
    unknown_sections = set(data) - {"execute", "select"}
    if unknown_sections:
        raise ValueError(f"grants.toml: unknown sections {sorted(unknown_sections)}")
    parsed: dict[str, dict[str, tuple[str, ...]]] = {}
    for section in ("execute", "select"):
        parsed[section] = {}
        for name, roles in data.get(section, {}).items():
            bad = [role for role in roles if role not in ROLES]
            if bad or len(set(roles)) != len(roles) or not roles:
                raise ValueError(
                    f"grants.toml: [{section}] {name} = {roles}: roles must be some of {ROLES}"
                )
            parsed[section][name] = tuple(roles)
    return Grants(parsed["execute"], parsed["select"])


def code_checksum(revision: str) -> str:
    """One checksum over the code files, the grant list and the migration revision they run on."""
    digest = hashlib.sha256(f"revision {revision}\n".encode())
    for name in [*manifest(), "grants.toml"]:
        if name.startswith("plpy:"):
            text = plpy_source(name.removeprefix("plpy:"))
        else:
            text = read_code(name)
        digest.update(f"{name}\n{len(text)}\n".encode())
        digest.update(text.encode())
    return digest.hexdigest()


def _grant_statements(cur: Any) -> list[sql.Composable]:
    """The statements that make the schema's privileges exactly what grants.toml says."""
    roles = sql.SQL(", ").join([sql.SQL("public"), *map(sql.Identifier, ROLES)])
    statements: list[sql.Composable] = [
        sql.SQL("revoke all on all routines in schema allocator from {}").format(roles),
        sql.SQL("revoke all on all tables in schema allocator from {}").format(roles),
        sql.SQL("revoke all on schema allocator from public"),
        sql.SQL("grant usage on schema allocator to {}").format(
            sql.SQL(", ").join(map(sql.Identifier, ROLES))
        ),
    ]
    listed = grants()
    for name, to in sorted(listed.execute.items()):
        cur.execute(query("routines_named"), (name,))
        signatures = [row[0] for row in cur.fetchall()]
        if not signatures:
            raise ValueError(f"grants.toml names allocator.{name}, which the code does not create")
        for signature in signatures:
            statements.append(
                sql.SQL("grant execute on routine {} to {}").format(
                    sql.SQL(signature), sql.SQL(", ").join(map(sql.Identifier, to))
                )
            )
    for name, to in sorted(listed.select.items()):
        target = (
            sql.SQL("all tables in schema allocator")
            if name == "*"
            else sql.SQL("allocator.{}").format(sql.Identifier(name))
        )
        statements.append(
            sql.SQL("grant select on {} to {}").format(
                target, sql.SQL(", ").join(map(sql.Identifier, to))
            )
        )
    return statements


def apply_code(dbapi_connection: Any, revision: str, *, force: bool = False) -> bool:
    """Apply the code and the grant list inside the connection's current transaction, unless
    the database already runs this exact code on this revision. True when it applied."""
    checksum = code_checksum(revision)
    with dbapi_connection.cursor() as cur:
        cur.execute(query("code_checksum"))
        row = cur.fetchone()
        if row is not None and row[0] == checksum and not force:
            return False
        for name in manifest():
            if name.startswith("plpy:"):
                file = name.removeprefix("plpy:")
                source = plpy_source(file)
                digest = hashlib.sha256(source.encode()).hexdigest()
                cur.execute(query("install_plpy_module"), (Path(file).stem, source, digest))
                continue
            # No parameters: psycopg sends the file as one simple query, all statements at once.
            cur.execute(read_code(name).encode())
        for statement in _grant_statements(cur):
            cur.execute(statement)
        cur.execute(query("record_code_checksum"), (checksum,))
    return True


def forget_code(dbapi_connection: Any) -> None:
    """After a downgrade: the code no longer matches, so the next upgrade re-applies it."""
    with dbapi_connection.cursor() as cur:
        cur.execute(query("forget_code_checksum"))


def run_revision(revision_file: str, direction: str) -> None:
    """Run the SQL of an alembic revision: ``NNNN_name.sql`` up, ``NNNN_name.down.sql`` down."""
    from alembic import op

    path = Path(revision_file)
    script = path.with_suffix(".sql" if direction == "up" else ".down.sql")
    dbapi_connection: Any = op.get_bind().connection.dbapi_connection
    with dbapi_connection.cursor() as cur:
        cur.execute(script.read_text().encode())


def migration_files() -> dict[str, str]:
    """Each file of each revision (``NNNN_name.py``, ``.sql``, ``.down.sql``) -> its sha256."""
    found: dict[str, str] = {}
    for entry in migrations_dir().iterdir():
        if entry.is_file() and entry.name[:4].isdigit():
            found[entry.name] = hashlib.sha256(entry.read_bytes()).hexdigest()
    return dict(sorted(found.items()))


def released_lock() -> Traversable:
    """control/migrations/released.lock."""
    return files("control") / "migrations" / "released.lock"


def released() -> dict[str, str]:
    """The files of released revisions, as the lock file records them."""
    entries: dict[str, str] = {}
    for line in released_lock().read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, digest = line.split()
            entries[name] = digest
    return entries


def release_migrations() -> list[str]:
    """Record every revision file not yet in the lock file (at a release); the names added."""
    known = released()
    added = {name: digest for name, digest in migration_files().items() if name not in known}
    if added:
        path = Path(str(released_lock()))
        with path.open("a") as lock:
            for name, digest in added.items():
                lock.write(f"{name} {digest}\n")
    return sorted(added)
