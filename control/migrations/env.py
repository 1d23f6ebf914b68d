"""Alembic environment: revisions run their SQL files, then the schema's code is re-applied.

One transaction holds the whole upgrade: the revisions, then (after an upgrade) the code of
control/sql/ and its grants when their checksum changed, so a failed upgrade leaves the
database as it was. The connection is made by psycopg from a libpq connection string (URL
or key=value), so every form DATABASE_URL may take works the same here as everywhere else.
"""

from __future__ import annotations

from typing import Any

import psycopg
from alembic import context
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool

from control.db import database_url
from control.queries import query
from control.sqlfiles import apply_code, forget_code

conninfo = context.config.attributes.get("conninfo") or database_url()
# "apply" after an upgrade, "forget" after a downgrade; the alembic command line sets neither.
code_action = context.config.attributes.get("code_action")


def run_migrations_offline() -> None:
    context.configure(dialect_name="postgresql", literal_binds=True, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(
        "postgresql+psycopg://",
        creator=lambda: psycopg.connect(conninfo),
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            transactional_ddl=True,
            transaction_per_migration=False,
            version_table_schema="public",
        )
        with context.begin_transaction():
            dbapi: Any = connection.connection.dbapi_connection
            with dbapi.cursor() as cur:
                # Two upgrades at once would both apply code; the second waits instead.
                cur.execute(query("migration_lock"))
            context.run_migrations()
            heads = MigrationContext.configure(connection).get_current_heads()
            if code_action == "apply" and heads:
                apply_code(dbapi, ",".join(sorted(heads)))
            elif code_action == "forget":
                forget_code(dbapi)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
