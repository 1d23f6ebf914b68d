"""Baseline: the schema's state (extensions, roles, tables, indexes, constraints, seed rows).

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from control.sqlfiles import run_revision

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_revision(__file__, "up")


def downgrade() -> None:
    run_revision(__file__, "down")
