"""changes that keep the table

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 03:03:30.373112
"""

from control.sqlfiles import run_revision

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_revision(__file__, "up")


def downgrade() -> None:
    run_revision(__file__, "down")
