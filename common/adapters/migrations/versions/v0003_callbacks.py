"""Completion webhooks: each job may name a callback_url, and keeps how its delivery went.

Columns only, all nullable or defaulted, so the upgrade is instant on a large jobs table and a downgrade
simply drops them (the webhook record goes; jobs and their results stay)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_callbacks"
down_revision = "0002_keys_owners"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("callback_url", sa.String(2048), nullable=True))
    op.add_column("jobs", sa.Column("callback_state", sa.String(16), nullable=True))
    op.add_column("jobs", sa.Column("callback_attempts", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("jobs", sa.Column("callback_last_code", sa.Integer(), nullable=True))


def downgrade() -> None:
    for column in ("callback_last_code", "callback_attempts", "callback_state", "callback_url"):
        op.drop_column("jobs", column)
