"""waitlist

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 03:29:54.810679
"""

from control.sqlfiles import run_revision

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_revision(__file__, "up")


def downgrade() -> None:
    run_revision(__file__, "down")
