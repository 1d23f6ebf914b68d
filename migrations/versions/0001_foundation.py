"""Foundation: extensions, errors, clock, settings, core tables, layout, allocations.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from alembic import op

from control.sqlfiles import run_sql_files

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = [
    "extensions.sql",
    "errors.sql",
    "clock.sql",
    "settings.sql",
    "core.sql",
    "layout.sql",
    "allocations.sql",
]
DOWNGRADE = ["down/0001_foundation.sql"]


def upgrade() -> None:
    run_sql_files(op.get_bind().connection.dbapi_connection, UPGRADE)


def downgrade() -> None:
    run_sql_files(op.get_bind().connection.dbapi_connection, DOWNGRADE)
