"""service periods

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 01:01:32.314951
"""

from control.sqlfiles import run_revision

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_revision(__file__, "up")


def downgrade() -> None:
    run_revision(__file__, "down")
