"""API keys, owners on documents and jobs, and several jobs per document (re-processing).

documents.job_id points at the job whose result the document shows; each existing document gets its
only job. Downgrading needs one job per document again, so it refuses while a document has several.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision = "0002_keys_owners"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

def _dt() -> sa.DateTime:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _dt(), nullable=False),
        sa.Column("last_used_at", _dt(), nullable=True),
        sa.Column("revoked_at", _dt(), nullable=True),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.add_column("documents", sa.Column("owner_id", sa.String(16), nullable=True))
    op.add_column("documents", sa.Column("job_id", sa.String(36), nullable=True))
    op.create_index("ix_documents_owner_created_id", "documents", ["owner_id", "created_at", "id"])
    op.add_column("jobs", sa.Column("owner_id", sa.String(16), nullable=True))
    # The foreign key needs an index of its own before the unique one that served it goes.
    op.create_index("ix_jobs_document_id", "jobs", ["document_id"])
    op.drop_index("document_id", table_name="jobs")
    op.execute("UPDATE documents d JOIN jobs j ON j.document_id = d.id SET d.job_id = j.id WHERE d.job_id IS NULL")


def refusal(connection: sa.engine.Connection) -> str | None:
    """Why this revision cannot be undone now (checked before a downgrade starts), or None."""
    several = connection.execute(sa.text(
        "SELECT document_id FROM jobs GROUP BY document_id HAVING COUNT(*) > 1 LIMIT 5")).scalars().all()
    if several:
        return ("cannot go back to one job per document: documents " + ", ".join(several)
                + " have several (re-processed); delete their older jobs first")
    return None


def downgrade() -> None:
    if not context.is_offline_mode():
        reason = refusal(op.get_bind())
        if reason:
            raise RuntimeError(reason)
    op.create_index("document_id", "jobs", ["document_id"], unique=True)
    op.drop_index("ix_jobs_document_id", table_name="jobs")
    op.drop_column("jobs", "owner_id")
    op.drop_index("ix_documents_owner_created_id", table_name="documents")
    op.drop_column("documents", "job_id")
    op.drop_column("documents", "owner_id")
    op.drop_table("api_keys")
