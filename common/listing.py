"""The document listing: validated query parameters in, one page of documents with job status out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from common.config import Settings
from common.db import Document, Job, session_scope
from common.errors import BadRequest
from common.status import iso

DEFAULT_LIMIT = 10
MAX_LIMIT = 100


@dataclass(frozen=True)
class ListQuery:
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> "ListQuery":
        return cls(
            limit=_int_param(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
            offset=_int_param(params, "offset", 0, 0, None),
        )


def _int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as e:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from e
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BadRequest(f"{name} must be {bound}, got {value}")
    return value


def list_documents(settings: Settings, query: ListQuery) -> dict[str, Any]:
    """Newest first; ties on created_at broken by id so pages never repeat or skip an item."""
    with session_scope(settings) as session:
        total = session.execute(select(func.count()).select_from(Document)).scalar_one()
        rows = session.execute(
            select(Document, Job)
            .join(Job, Job.document_id == Document.id)
            .order_by(Document.created_at.desc(), Document.id.desc())
            .limit(query.limit)
            .offset(query.offset)
        ).all()
    items = [
        {
            "document_id": doc.id,
            "job_id": job.id,
            "filename": doc.filename,
            "content_type": doc.content_type,
            "size_bytes": doc.size_bytes,
            "source": doc.source,
            "status": job.status.value,
            "page_count": job.page_count,
            "created_at": iso(doc.created_at),
        }
        for doc, job in rows
    ]
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}
