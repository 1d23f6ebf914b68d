"""table blocks

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 03:18:11.799831
"""

from control.sqlfiles import run_revision

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_revision(__file__, "up")


def downgrade() -> None:
    run_revision(__file__, "down")
