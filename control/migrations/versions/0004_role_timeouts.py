"""role timeouts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 21:38:18.708651
"""

from control.sqlfiles import run_revision

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_revision(__file__, "up")


def downgrade() -> None:
    run_revision(__file__, "down")
