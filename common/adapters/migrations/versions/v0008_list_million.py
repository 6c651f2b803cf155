"""The listing at a million documents: a file name prefix and a rare status's deep pages read only their matches.

- ix_documents_filename_created_id and ix_documents_owner_filename_created_id (a user key's listing):
  `filename` now matches the start of the name, a range of these indexes; a substring had no index and
  read the whole table (2.7 s at 1M documents).
- jobs.document_created_at (the document's created_at, copied once: it never changes) and
  ix_jobs_status_listed (status, document_created_at, document_id): a rare status's jobs in list order, so an
  offset page of `status=failed` reads offset + limit of them instead of collecting and sorting all (4.8 s).

The backfill reads jobs and documents once (a join on the primary key); on a large archive run it at a quiet
hour. A downgrade drops the column and the three indexes (nothing else is lost)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008_list_million"
down_revision = "0007_webhook_seal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("document_created_at", sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql"),
                                    nullable=True))
    op.execute("UPDATE jobs j JOIN documents d ON d.id = j.document_id SET j.document_created_at = d.created_at")
    op.create_index("ix_jobs_status_listed", "jobs", ["status", "document_created_at", "document_id"])
    op.create_index("ix_documents_filename_created_id", "documents", ["filename", "created_at", "id"])
    op.create_index("ix_documents_owner_filename_created_id", "documents", ["owner_id", "filename", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_documents_owner_filename_created_id", table_name="documents")
    op.drop_index("ix_documents_filename_created_id", table_name="documents")
    op.drop_index("ix_jobs_status_listed", table_name="jobs")
    op.drop_column("jobs", "document_created_at")
