"""The job-status read path: the Redis cache in front of MySQL, in one place."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common.adapters import cache
from common.adapters.db import Document, Job, Page
from common.config import Settings
from common.errors import BadRequest, JobNotFound
from common.models import JobStatus, Principal
from common.rules import downloads, jobs, result_warnings
from common.rules.page_layout import PAGES_PER_ANSWER, PageRange, stored_layout, with_box


def iso(moment: datetime | None) -> str | None:
    """Stored times are naive UTC; clients get ISO 8601 with an explicit Z."""
    return None if moment is None else moment.isoformat(timespec="milliseconds") + "Z"


@dataclass(frozen=True)
class StatusRead:
    """A status answer: the stored JSON object, and the fields made for this read (signed links, `include=`).

    A cache hit hands `stored` on as Redis returned it; only `extra` is encoded per read, and spliced in.
    """

    stored: bytes  # a JSON object without any key of `extra`
    status: str
    extra: dict[str, Any]
    cache: str  # "hit", "miss" or "off": sent as X-Cache so the path taken can be observed

    def json_bytes(self) -> bytes:
        """The answer as JSON, `stored` not decoded: `{...stored` + `,` + `extra...}`."""
        if not self.extra:
            return self.stored
        return self.stored[:-1] + b"," + encode(self.extra)[1:]

    @property
    def body(self) -> dict[str, Any]:
        """The answer decoded, for callers that need its fields (the text view, tests)."""
        decoded: dict[str, Any] = json.loads(self.stored)
        return {**decoded, **self.extra}


def encode(body: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, the one encoding of a status answer whether it is then cached or served."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


# What `?include=` may add to a status answer: per-page details, each word with its box, lines of words.
INCLUDE_CHOICES = ("pages", "words", "lines")


def parse_include(value: str | None) -> frozenset[str]:
    """`pages`, `words`, `lines` or any of them joined by commas; words and lines come inside their pages,
    so either implies `pages`, and lines come with their words (Textract's shape: lines, then words)."""
    chosen = frozenset(part.strip() for part in (value or "").split(",") if part.strip())
    unknown = sorted(chosen - set(INCLUDE_CHOICES))
    if unknown:
        raise BadRequest(f"include={','.join(unknown)} is not known; choose from {', '.join(INCLUDE_CHOICES)}")
    if "lines" in chosen:
        return chosen | {"pages", "words"}
    return chosen | {"pages"} if "words" in chosen else chosen


def job_status(settings: Settings, job_id: str, caller: Principal,
               include: frozenset[str] = frozenset(), pages: PageRange | None = None,
               link_base: str | None = None) -> StatusRead:
    """Redis first, MySQL on a miss (refilling Redis); Redis trouble only ever means a miss.

    Someone else's job is answered like a missing one, and along the same path: a cached entry of
    another owner is not served, and MySQL is asked as on a miss, so the timing does not tell either.
    A document id stands for the job whose result the document shows, so the id `list` prints reads
    a result too; it is looked up only once no job has the id, which keeps a job's read as it was.
    `link_base` is the gateway's address the `outputs` links start with (OUTPUT_LINKS=api; PUBLIC_URL
    when None).
    """
    try:
        uuid.UUID(job_id)
    except ValueError as e:
        raise JobNotFound(f"job {job_id!r} does not exist (job and document ids are UUIDs)") from e
    owner = caller.owner_filter
    entry = cache.read_status(settings, job_id) if settings.status_cache else None
    if entry is not None and owner is not None and entry.owner_id != owner:
        entry = None
    outcome = "hit" if entry is not None else ("miss" if settings.status_cache else "off")
    if entry is None:
        try:
            job, document = jobs.get(settings, job_id, owner, replica=True)
        except JobNotFound:
            shown = jobs.shown_by(settings, job_id, owner, replica=True)
            if shown is None or shown == job_id:
                raise JobNotFound(f"job {job_id} does not exist, nor a document of that id") from None
            return job_status(settings, shown, caller, include, pages, link_base)
        entry = _cached(_body(job, document))
        if settings.status_cache:
            cache.fill_status(settings, job_id, job.version, entry, job.status.is_final)
    extra: dict[str, Any] = {}
    if entry.outputs is not None:
        # The cache holds object keys; links are made per read, as a cached signed link would outlive its
        # signature and an API link names the reader's gateway. `pdfa` beside them is a record, not a link.
        base = settings.public_url if link_base is None else link_base
        extra["outputs"] = downloads.output_links(settings, job_id, entry.outputs, base)
    if "pages" in include:
        # One page past the range is asked for only to say whether another answer follows.
        chosen = pages or PageRange(1, PAGES_PER_ANSWER)
        stored = jobs.pages_of(settings, job_id, chosen.first, chosen.last + 1, replica=True)
        extra["pages"] = [_page(p, "words" in include, "lines" in include)
                          for p in stored if p.page_number <= chosen.last]
        extra["next_page_from"] = chosen.last + 1 if stored and stored[-1].page_number > chosen.last else None
    return StatusRead(stored=entry.body, status=entry.status, extra=extra, cache=outcome)


def _cached(body: dict[str, Any]) -> cache.CachedStatus:
    """A body as the cache keeps it: encoded once, its output keys beside it (they become links per read)."""
    outputs = body.pop("outputs", None)
    return cache.CachedStatus(body=encode(body), owner_id=body["owner_id"], status=body["status"],
                              outputs=outputs if isinstance(outputs, dict) else None)


def _page(page: Page, with_words: bool, with_lines: bool = False) -> dict[str, Any]:
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
    layout = stored_layout(page.words)
    out["skew"] = layout.skew
    if layout.languages:
        out["languages"] = layout.languages
    out["warnings"] = result_warnings.stored(page.warnings)
    if layout.text_layer_rejected:
        out["text_layer_rejected"] = layout.text_layer_rejected
    # Boxes are in pixels of the page (width x height above); with lines, also as fractions of it in `box`.
    if with_lines:
        out["lines"] = [with_box(line, page.width, page.height) for line in layout.lines]
        out["words"] = [with_box(w, page.width, page.height) for w in layout.words]
    elif with_words:
        out["words"] = layout.words
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
    if job.callback_url:
        # How the completion webhook went (rules/webhooks.py); the URL itself is not repeated.
        body["callback"] = {"state": job.callback_state, "attempts": job.callback_attempts,
                            "last_code": job.callback_last_code}
    if job.status == JobStatus.COMPLETED:
        body["text"] = job.text
        body["outputs"] = json.loads(job.outputs or "{}")
        body["warnings"] = result_warnings.stored(job.warnings)
    return body
