"""guest contact and mail delivery

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 02:36:25.180967
"""

from control.sqlfiles import run_revision

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_revision(__file__, "up")


def downgrade() -> None:
    run_revision(__file__, "down")
