"""Page chunks (a large document's pages split into runs, each OCRed by an invocation of its own), and each
job's choice of a PDF/A searchable PDF.

A new table and a defaulted column, so the upgrade is instant whatever the size of jobs; a downgrade drops
them (a job that was fanned out when it ran keeps its pages and results)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004_chunks_pdfa"
down_revision = "0003_callbacks"
branch_labels = None
depends_on = None


def _dt() -> sa.DateTime:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    op.create_table(
        "job_chunks",
        sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("number", sa.Integer(), primary_key=True),
        sa.Column("first_page", sa.Integer(), nullable=False),
        sa.Column("last_page", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claim_token", sa.String(36), nullable=True),
        sa.Column("lease_expires_at", _dt(), nullable=True),
        sa.Column("updated_at", _dt(), nullable=False),
        mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
    )
    op.add_column("jobs", sa.Column("pdfa", sa.Boolean(), nullable=False, server_default=sa.text("0")))


def downgrade() -> None:
    op.drop_column("jobs", "pdfa")
    op.drop_table("job_chunks")
