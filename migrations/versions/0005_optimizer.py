"""Day optimizer: the solver module, optimize_day (PL/Python), apply_optimal_assignment,
nightly_optimize, optimizer_runs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from alembic import op

from control.sqlfiles import run_sql_files

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = ["optimizer.sql", "plpy:solver.py", "security_optimizer.sql"]
DOWNGRADE = ["down/0005_optimizer.sql"]


def upgrade() -> None:
    run_sql_files(op.get_bind().connection.dbapi_connection, UPGRADE)


def downgrade() -> None:
    run_sql_files(op.get_bind().connection.dbapi_connection, DOWNGRADE)
