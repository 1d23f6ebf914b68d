"""a booking's state changes without index writes

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 07:25:58.874694
"""

from control.sqlfiles import run_revision

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_revision(__file__, "up")


def downgrade() -> None:
    run_revision(__file__, "down")
