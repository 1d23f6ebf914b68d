"""check_invariants(): what must always hold, for tests and DBAs.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from alembic import op

from control.sqlfiles import run_sql_files

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = ["invariants.sql", "security_invariants.sql"]
DOWNGRADE = ["down/0006_invariants.sql"]


def upgrade() -> None:
    run_sql_files(op.get_bind().connection.dbapi_connection, UPGRADE)


def downgrade() -> None:
    run_sql_files(op.get_bind().connection.dbapi_connection, DOWNGRADE)
