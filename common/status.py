"""The job-status read path: the Redis cache in front of MySQL, in one place."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common import cache, jobs, storage
from common.config import Settings
from common.db import Document, Job, JobStatus
from common.errors import JobNotFound


def iso(moment: datetime | None) -> str | None:
    """Stored times are naive UTC; clients get ISO 8601 with an explicit Z."""
    return None if moment is None else moment.isoformat(timespec="milliseconds") + "Z"


@dataclass(frozen=True)
class StatusRead:
    body: dict[str, Any]
    cache: str  # "hit", "miss" or "off": sent as X-Cache so the path taken can be observed


def job_status(settings: Settings, job_id: str, include_pages: bool = False) -> StatusRead:
    """Redis first, MySQL on a miss (refilling Redis); Redis trouble only ever means a miss."""
    try:
        uuid.UUID(job_id)
    except ValueError as e:
        raise JobNotFound(f"job {job_id!r} does not exist (job ids are UUIDs)") from e
    body = cache.read_status(settings, job_id) if settings.status_cache else None
    outcome = "hit" if body is not None else ("miss" if settings.status_cache else "off")
    if body is None:
        job, document = jobs.get(settings, job_id)
        body = _body(job, document)
        if settings.status_cache:
            cache.fill_status(settings, job_id, job.version, body, job.status.is_final)
    if isinstance(body.get("outputs"), dict):
        # The body (and the cache) holds object keys; links are signed per read, as a cached link
        # would outlive its signature.
        body["outputs"] = {name: storage.presigned_url(settings, key) for name, key in body["outputs"].items()}
    if include_pages:
        body["pages"] = [
            {
                "page": p.page_number,
                "text": p.text,
                "confidence": p.confidence,
                "method": p.method,
                "width": p.width,
                "height": p.height,
                "duration_ms": p.duration_ms,
                "rotation": p.rotation,
            }
            for p in jobs.pages_of(settings, job_id)
        ]
    return StatusRead(body=body, cache=outcome)


def _body(job: Job, document: Document) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_id": job.id,
        "document_id": document.id,
        "filename": document.filename,
        "content_type": document.content_type,
        "size_bytes": document.size_bytes,
        "source": document.source,
        "status": job.status.value,
        "lang": job.lang,
        "attempts": job.attempts,
        "page_count": job.page_count,
        "pages_done": job.pages_done,
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "error": {"code": job.error_code, "message": job.error_message}
        if job.status == JobStatus.FAILED
        else None,
    }
    if job.status == JobStatus.COMPLETED:
        body["text"] = job.text
        body["outputs"] = json.loads(job.outputs or "{}")
    return body
