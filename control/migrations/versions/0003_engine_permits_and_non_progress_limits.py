"""engine permits and non-progress limits

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 21:38:17.998824
"""

from control.sqlfiles import run_revision

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_revision(__file__, "up")


def downgrade() -> None:
    run_revision(__file__, "down")
