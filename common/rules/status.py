"""The job-status read path: the Redis cache in front of MySQL, in one place."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common.adapters import cache, storage
from common.adapters.db import Document, Job, Page
from common.config import Settings
from common.errors import BadRequest, JobNotFound
from common.models import JobStatus, Principal
from common.rules import jobs


def iso(moment: datetime | None) -> str | None:
    """Stored times are naive UTC; clients get ISO 8601 with an explicit Z."""
    return None if moment is None else moment.isoformat(timespec="milliseconds") + "Z"


@dataclass(frozen=True)
class StatusRead:
    body: dict[str, Any]
    cache: str  # "hit", "miss" or "off": sent as X-Cache so the path taken can be observed


# What `?include=` may add to a status answer: per-page details, and each OCRed word with its box.
INCLUDE_CHOICES = ("pages", "words")


def parse_include(value: str | None) -> frozenset[str]:
    """`pages`, `words` or `pages,words`; words come inside their pages, so `words` implies `pages`."""
    chosen = frozenset(part.strip() for part in (value or "").split(",") if part.strip())
    unknown = sorted(chosen - set(INCLUDE_CHOICES))
    if unknown:
        raise BadRequest(f"include={','.join(unknown)} is not known; choose from {', '.join(INCLUDE_CHOICES)}")
    return chosen | {"pages"} if "words" in chosen else chosen


def job_status(settings: Settings, job_id: str, caller: Principal,
               include: frozenset[str] = frozenset()) -> StatusRead:
    """Redis first, MySQL on a miss (refilling Redis); Redis trouble only ever means a miss.

    Someone else's job is answered like a missing one, and along the same path: a cached entry of
    another owner is not served, and MySQL is asked as on a miss, so the timing does not tell either.
    """
    try:
        uuid.UUID(job_id)
    except ValueError as e:
        raise JobNotFound(f"job {job_id!r} does not exist (job ids are UUIDs)") from e
    owner = caller.owner_filter
    body = cache.read_status(settings, job_id) if settings.status_cache else None
    if body is not None and owner is not None and body.get("owner_id") != owner:
        body = None
    outcome = "hit" if body is not None else ("miss" if settings.status_cache else "off")
    if body is None:
        job, document = jobs.get(settings, job_id, owner)
        body = _body(job, document)
        if settings.status_cache:
            cache.fill_status(settings, job_id, job.version, body, job.status.is_final)
    if isinstance(body.get("outputs"), dict):
        # The body (and the cache) holds object keys; links are signed per read, as a cached link
        # would outlive its signature.
        body["outputs"] = {name: storage.presigned_url(settings, key) for name, key in body["outputs"].items()}
    if "pages" in include:
        body["pages"] = [_page(p, "words" in include) for p in jobs.pages_of(settings, job_id)]
    return StatusRead(body=body, cache=outcome)


def _page(page: Page, with_words: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "page": page.page_number,
        "text": page.text,
        "confidence": page.confidence,
        "method": page.method,
        "width": page.width,
        "height": page.height,
        "duration_ms": page.duration_ms,
        "rotation": page.rotation,
    }
    if with_words:
        # Boxes are in pixels of the OCRed raster (width x height above); text-layer pages have none.
        out["words"] = json.loads(page.words) if page.words else []
    return out


def document_fields(document: Document) -> dict[str, Any]:
    """What every answer about a document says of it (status, the documents function)."""
    return {
        "document_id": document.id,
        "filename": document.filename,
        "content_type": document.content_type,
        "size_bytes": document.size_bytes,
        "source": document.source,
        "owner_id": document.owner_id,
    }


def _body(job: Job, document: Document) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_id": job.id,
        **document_fields(document),
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
