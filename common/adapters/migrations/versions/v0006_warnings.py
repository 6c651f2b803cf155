"""Warnings: each page and each job keep what may be missing from their result, as coded warnings (JSON).

Columns only, nullable, so the upgrade is instant on large tables and a downgrade simply drops them (the
warnings go; jobs, pages and their text stay)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_warnings"
down_revision = "0005_list_walk"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pages", sa.Column("warnings", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("warnings", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "warnings")
    op.drop_column("pages", "warnings")
