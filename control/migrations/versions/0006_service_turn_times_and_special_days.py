"""service turn times and special days

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 02:21:25.735193
"""

from control.sqlfiles import run_revision

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_revision(__file__, "up")


def downgrade() -> None:
    run_revision(__file__, "down")
