"""table turns

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 03:07:58.870505
"""

from control.sqlfiles import run_revision

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_revision(__file__, "up")


def downgrade() -> None:
    run_revision(__file__, "down")
