"""Webhook seal: each API key's webhook signing secret, sealed with the server's internal token.

A nullable column, so the upgrade is instant; keys made before it keep signing the old way (v1) until they are
replaced. A downgrade drops it: events of the keys made since are then signed the old way too."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_webhook_seal"
down_revision = "0006_warnings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("webhook_seal", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("api_keys", "webhook_seal")
