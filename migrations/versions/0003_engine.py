"""Assignment engine: availability, candidates and scoring, queue claims and leases,
circuit breakers, permits, process_booking; settings patches.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from alembic import op

from control.sqlfiles import run_sql_files

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = [
    "restaurant_admin.sql",
    "availability.sql",
    "queue.sql",
    "engine.sql",
    "metrics.sql",
    "security_engine.sql",
]
DOWNGRADE = ["down/0003_engine.sql"]


def upgrade() -> None:
    run_sql_files(op.get_bind().connection.dbapi_connection, UPGRADE)


def downgrade() -> None:
    run_sql_files(op.get_bind().connection.dbapi_connection, DOWNGRADE)
