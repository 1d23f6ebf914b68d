"""Alembic environment: revisions run SQL files on the project database.

The connection is made by psycopg from a libpq connection string (URL or key=value), so
every form DATABASE_URL may take works the same here as everywhere else.
"""

from __future__ import annotations

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool

from control.db import database_url

conninfo = context.config.attributes.get("conninfo") or database_url()


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
            transaction_per_migration=True,
            version_table_schema="public",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
