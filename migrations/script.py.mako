"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from alembic import op

from control.sqlfiles import run_sql_files

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}

UPGRADE: list[str] = []
DOWNGRADE: list[str] = []


def upgrade() -> None:
    run_sql_files(op.get_bind().connection.dbapi_connection, UPGRADE)


def downgrade() -> None:
    run_sql_files(op.get_bind().connection.dbapi_connection, DOWNGRADE)
