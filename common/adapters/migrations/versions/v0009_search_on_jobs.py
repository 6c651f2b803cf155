"""A `q` search at a million documents, found on jobs alone: which job each document shows, and its owner.

A search's matches come from the jobs' full-text index; whether each is its document's shown job, and
for a user key whether the document is its own, was answered by reading the document (a primary-key
read per match, 8,546 of them for a word in 1 % of a million texts). Both now sit in the job's row,
which the match reads anyway:

- jobs.shown: this is the job its document shows (documents.job_id); rules/jobs.show sets both.
- jobs.document_owner_id: the document's owner_id, copied at the job's creation (it never changes), as
  jobs.document_created_at is.

The page is then found, sorted and counted on jobs alone (p95 in bench/list_bench.py for that word:
113 ms -> 51 ms; a user key's search of it 82 ms -> 50 ms). The columns and their backfill rewrite the jobs
table (a join on the primary key; a trial of the first column took about two and a half minutes at a million
documents on two cores): run it at a quiet hour. A downgrade drops the two columns (nothing else is lost)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_search_on_jobs"
down_revision = "0008_list_million"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("shown", sa.Boolean(), nullable=False, server_default=sa.text("0")))
    op.add_column("jobs", sa.Column("document_owner_id", sa.String(16), nullable=True))
    op.execute("UPDATE jobs j JOIN documents d ON d.id = j.document_id "
               "SET j.shown = COALESCE(d.job_id = j.id, 0), j.document_owner_id = d.owner_id")


def downgrade() -> None:
    op.drop_column("jobs", "document_owner_id")
    op.drop_column("jobs", "shown")
