"""External ids: bookings imported from another system keep the id they had there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from control.sqlfiles import run_revision

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_revision(__file__, "up")


def downgrade() -> None:
    run_revision(__file__, "down")
