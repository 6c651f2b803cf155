"""A `q` search at a million documents: jobs.shown says which job its document shows.

A search's matches come from the jobs' full-text index; whether each is its document's shown job was
answered by reading the document (a primary-key read per match, 10,000 of them for a word in 1 % of a
million texts). The flag sits in the job's row, which the match reads anyway, so the page is found,
sorted and counted on jobs alone (p95 113 ms -> 52 ms for that word in bench/list_bench.py).

The column and its backfill rewrite the jobs table (a join on the primary key; about two and a half minutes
at a million documents on two cores): run it at a quiet hour. A downgrade drops the column (nothing else is lost)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_shown_job"
down_revision = "0008_list_million"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("shown", sa.Boolean(), nullable=False, server_default=sa.text("0")))
    op.execute("UPDATE jobs j JOIN documents d ON d.job_id = j.id AND d.id = j.document_id SET j.shown = 1")


def downgrade() -> None:
    op.drop_column("jobs", "shown")
