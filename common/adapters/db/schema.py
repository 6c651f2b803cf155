"""The schema as SQLAlchemy models: api keys, documents, jobs, their pages and chunks.

A change here is an Alembic revision in common/adapters/migrations (its package docstring says how)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.mysql import DATETIME, MEDIUMTEXT
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.models import (
    MAX_BUCKET_CHARS,
    MAX_CONTENT_TYPE_CHARS,
    MAX_ETAG_CHARS,
    MAX_FILENAME_BYTES,
    MAX_LANG_CHARS,
    MAX_OBJECT_KEY_BYTES,
    MAX_REQUEST_ID_CHARS,
    JobStatus,
)

# Long texts: MEDIUMTEXT on MySQL/MariaDB (16 MiB) instead of TEXT's 64 KiB.
LongText = Text().with_variant(MEDIUMTEXT(), "mysql")


def utcnow() -> datetime:
    """Naive UTC with microseconds: what DATETIME(6) stores, so comparisons stay exact."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


def _dt() -> DateTime:
    # fsp=6 keeps microseconds, so "newest first" has few ties.
    return DateTime().with_variant(DATETIME(fsp=6), "mysql")


class ApiKey(Base):
    """A client's credential: only the SHA-256 of its secret is kept; the secret is shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))  # "admin" or "user"
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(_dt(), default=utcnow)
    # Written when the key is read from MySQL (a cache refill), so it is exact to AUTH_CACHE_SECONDS.
    last_used_at: Mapped[datetime | None] = mapped_column(_dt(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(_dt(), nullable=True)
    # The webhook signing secret sealed with the internal token (rules/webhook_keys.py); None for older keys.
    webhook_seal: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = ({"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"},)


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    filename: Mapped[str] = mapped_column(String(MAX_FILENAME_BYTES))
    content_type: Mapped[str] = mapped_column(String(MAX_CONTENT_TYPE_CHARS))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    bucket: Mapped[str] = mapped_column(String(MAX_BUCKET_CHARS))
    object_key: Mapped[str] = mapped_column(String(MAX_OBJECT_KEY_BYTES))
    etag: Mapped[str | None] = mapped_column(String(MAX_ETAG_CHARS), nullable=True)
    source: Mapped[str] = mapped_column(String(16))  # "upload" or "drop"
    # sha256 of bucket/key/etag: a unique handle on one object version (the key is too long to index).
    source_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(_dt(), default=utcnow)
    # The API key that owns the document; null only with AUTH=off or for rows made before keys existed
    # (those are seen by admin keys alone).
    owner_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The job whose result the document shows (listing, search). A re-process moves it to the new job
    # only once that job completes, so the previous result stays until then.
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True)

    __table_args__ = (
        # list for one owner (every user key's listing): the owner's documents already in list order.
        Index("ix_documents_owner_created_id", "owner_id", "created_at", "id"),
        # list: pages in created_at order with id as tie-breaker, keyset cursors, date_from/date_to ranges.
        Index("ix_documents_created_id", "created_at", "id"),
        # list ?content_type=: exact type already in list order (no sort); a family (image/*) is a range.
        Index("ix_documents_type_created_id", "content_type", "created_at", "id"),
        # A deep offset page under a status filter walks documents in list order for each one's type and job:
        # these hold both, so no walked document's row is read (the two above stay for the narrower scans).
        Index("ix_documents_created_id_type_job", "created_at", "id", "content_type", "job_id"),
        Index("ix_documents_owner_created_id_type_job", "owner_id", "created_at", "id", "content_type", "job_id"),
        # list ?filename= (the start of the name): a range of the names with that prefix, each with its place in
        # list order, so only the matches are read and sorted, never the table.
        Index("ix_documents_filename_created_id", "filename", "created_at", "id"),
        Index("ix_documents_owner_filename_created_id", "owner_id", "filename", "created_at", "id"),
        {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"},
    )


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Not unique: a re-process adds a job to the same document.
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, values_callable=lambda e: [m.value for m in e], native_enum=False, length=16),
        default=JobStatus.PENDING,
    )
    lang: Mapped[str] = mapped_column(String(MAX_LANG_CHARS))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped by every change; the status cache refuses to go back to an older version.
    version: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    # A fresh token per claim fences off a worker whose lease expired: its writes no longer match.
    claim_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(_dt(), nullable=True)
    page_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pages_done: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str | None] = mapped_column(LongText, nullable=True)
    # JSON {"searchable_pdf": key, "hocr": key}: result objects stored next to the original.
    outputs: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(MAX_REQUEST_ID_CHARS), nullable=True)
    # The key that started this job (upload, drop owner or re-process).
    owner_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(_dt(), default=utcnow)
    # The document's created_at, copied at creation (it never changes): a status's jobs in list order by
    # ix_jobs_status_listed, so a deep page of a rare status reads its own jobs in order instead of sorting all.
    document_created_at: Mapped[datetime | None] = mapped_column(_dt(), nullable=True)
    # Whether this is the job its document shows (documents.job_id), kept beside the pointer by rules/jobs.show:
    # a `q` search filters and sorts its matches on jobs alone, without reading each match's document.
    shown: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The document's owner_id, copied at creation (it never changes): a user key's search checks its hits on jobs.
    document_owner_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(_dt(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(_dt(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(_dt(), nullable=True)
    # The completion webhook (rules/webhooks.py): where to POST, and how delivery went (state pending,
    # delivered or failed; attempts made; the receiver's last HTTP status).
    callback_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    callback_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    callback_last_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The searchable PDF asked for as PDF/A-2b (upload's `output=pdfa`, default OUTPUT_PDFA).
    pdfa: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # JSON [{code, message, pages}]: what may be missing from the result, gathered from its pages at completion.
    warnings: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        # list ?status= (selective states such as failed), and finding jobs by state.
        Index("ix_jobs_status", "status"),
        # list ?status= of a rare state at any depth: that state's jobs in list order (document_id breaks ties).
        Index("ix_jobs_status_listed", "status", "document_created_at", "document_id"),
        # list ?q=: MATCH(text) AGAINST (... IN BOOLEAN MODE); InnoDB full-text on MariaDB 10.11 and MySQL 8.
        Index("ftx_jobs_text", "text", mysql_prefix="FULLTEXT"),
        {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"},
    )


class Page(Base):
    __tablename__ = "pages"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    page_number: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(LongText)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    method: Mapped[str] = mapped_column(String(16))
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    rotation: Mapped[int] = mapped_column(Integer, default=0)
    # OCRed words as JSON ([{text, confidence, left, top, width, height}]); null for text-layer pages.
    words: Mapped[str | None] = mapped_column(LongText, nullable=True)
    # JSON [{code, message}]: what may be missing from this page's text (common.models.WarningCode).
    warnings: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        # One set of pages per job, whatever number of deliveries or attempts.
        UniqueConstraint("job_id", "page_number", name="uq_pages_job_page"),
        {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"},
    )


class JobChunk(Base):
    """A run of a large document's pages, OCRed by an invocation of its own (see common/rules/chunks.py).

    Claimed like a job: a lease renewed while a worker lives and a fresh token per claim, so a chunk whose
    worker died is taken over, and the old worker's late writes are refused.
    """

    __tablename__ = "job_chunks"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0-based, in page order
    first_page: Mapped[int] = mapped_column(Integer)
    last_page: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | processing | done
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(_dt(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(_dt(), default=utcnow)

    __table_args__ = ({"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"},)
