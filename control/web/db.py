"""The console's database access: one pool, and a transaction per request that acts for the
signed-in staff member.

The service logs in as a member of ``allocator_console``. Each transaction first names the
member in the setting ``allocator.acting_staff`` (local to the transaction), so row level
security and the RPCs' tenancy checks decide what it sees and changes. A transaction that
names nobody sees nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from control.queries import named_queries

CONSOLE_ROLE = "allocator_console"
DEFAULT_LOGIN = "allocator_web"
# Every statement of a request is bounded: a page never waits on a lock for long, and a
# request never leaves a transaction open.
SESSION_OPTIONS = (
    "-c statement_timeout=10s -c lock_timeout=3s -c idle_in_transaction_session_timeout=30s"
    " -c application_name=allocator-console"
)

Row = dict[str, Any]
Cursor = psycopg.Cursor[Row]


def q(name: str) -> str:
    """The SQL of a named query of control/web/console.sql."""
    return named_queries(Path(__file__).with_name("console.sql"))[name]


class NotConsoleLogin(RuntimeError):
    """The service was pointed at a login that is not a tenant-restricted console login."""


def console_conninfo(url: str, login: str = DEFAULT_LOGIN) -> str:
    """The connection string the service uses.

    A login that is a member of allocator_console is used as it is. A superuser's URL over
    the local socket (the embedded cluster's) is turned into one for ``login``: the role is
    created if missing, made a member of allocator_console, and the same socket, port and
    database are used. A superuser over TCP is refused: the operator makes the login.
    """
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        who = conn.execute(q("whoami")).fetchone()
        assert who is not None
        if who["console"] and not who["superuser"]:
            return url
        if not who["superuser"]:
            raise NotConsoleLogin(
                f"{who['login']} is not a member of {CONSOLE_ROLE}: the service must run as a"
                f" login granted {CONSOLE_ROLE} (GRANT {CONSOLE_ROLE} TO <login>)"
            )
        host = str(conn.info.host or "")
        if not host.startswith("/"):
            # A passwordless login is made only where the server is reached by its local
            # socket (the embedded cluster); elsewhere the operator makes the login.
            raise NotConsoleLogin(
                f"{who['login']} is a superuser, so tenancy would not restrict the service: run it"
                f" as a login granted {CONSOLE_ROLE} (CREATE ROLE allocator_web LOGIN PASSWORD"
                f" ...; GRANT {CONSOLE_ROLE} TO allocator_web) and point DATABASE_URL at it"
            )
        # Two services starting at once may both try; the role then exists.
        with suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            conn.execute(sql.SQL("create role {} login").format(sql.Identifier(login)))
        conn.execute(
            sql.SQL("grant {} to {}").format(sql.Identifier(CONSOLE_ROLE), sql.Identifier(login))
        )
    if "://" in url:
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit(parts._replace(netloc=f"{login}@{netloc}"))
    info = {
        k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None and k != "password"
    }
    info["user"] = login
    return make_conninfo("", **info)


@dataclass
class ConsoleDB:
    """The pool and the per-request transactions of the service."""

    pool: ConnectionPool[psycopg.Connection[Row]]
    http_status: dict[str, int]
    error_names: dict[str, str]

    @classmethod
    def open(cls, conninfo: str, *, max_size: int = 10) -> ConsoleDB:
        pool: ConnectionPool[psycopg.Connection[Row]] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "options": SESSION_OPTIONS},
            open=True,
            name="allocator-console",
        )
        with pool.connection() as conn:
            who = conn.execute(q("whoami")).fetchone()
            assert who is not None
            if not who["console"] or who["superuser"]:
                pool.close()
                raise NotConsoleLogin(
                    f"{who['login']} must be a non-superuser member of {CONSOLE_ROLE}"
                )
            codes = conn.execute(q("error_statuses")).fetchall()
        return cls(
            pool=pool,
            http_status={row["sqlstate"]: row["http_status"] for row in codes},
            error_names={row["sqlstate"]: row["name"] for row in codes},
        )

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def acting(self, login: str | None) -> Iterator[Cursor]:
        """A transaction acting for ``login`` (None: for nobody, which sees nothing)."""
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            if login is not None:
                cur.execute(q("act_as"), {"login": login})
            yield cur

    def one(self, login: str | None, name: str, params: dict[str, Any] | None = None) -> Row | None:
        with self.acting(login) as cur:
            cur.execute(q(name), params or {})
            return cur.fetchone()

    def all(self, login: str | None, name: str, params: dict[str, Any] | None = None) -> list[Row]:
        with self.acting(login) as cur:
            cur.execute(q(name), params or {})
            return cur.fetchall()
