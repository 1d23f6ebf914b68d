"""staff accounts and the console role

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 04:32:50.836633
"""

from control.sqlfiles import run_revision

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_revision(__file__, "up")


def downgrade() -> None:
    run_revision(__file__, "down")
