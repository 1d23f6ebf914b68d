"""Control plane: event cursors, notifications outbox, the in-database sweep, the pg_cron
job plan, status views.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from alembic import op

from control.sqlfiles import run_sql_files

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = ["control_plane.sql", "security_control_plane.sql"]
DOWNGRADE = ["down/0004_control_plane.sql"]


def upgrade() -> None:
    run_sql_files(op.get_bind().connection.dbapi_connection, UPGRADE)


def downgrade() -> None:
    run_sql_files(op.get_bind().connection.dbapi_connection, DOWNGRADE)
