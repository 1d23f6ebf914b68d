"""Booking lifecycle: transitions, history, events, queue, booking and hold RPCs,
manual actions, operator views, roles and tenancy.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from alembic import op

from control.sqlfiles import run_sql_files

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = [
    "tenancy.sql",
    "lifecycle.sql",
    "bookings.sql",
    "holds.sql",
    "manual.sql",
    "ops.sql",
    "security.sql",
]
DOWNGRADE = ["down/0002_lifecycle.sql"]


def upgrade() -> None:
    run_sql_files(op.get_bind().connection.dbapi_connection, UPGRADE)


def downgrade() -> None:
    run_sql_files(op.get_bind().connection.dbapi_connection, DOWNGRADE)
