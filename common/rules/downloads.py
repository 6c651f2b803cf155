"""Downloads through the API: a job's text, searchable PDF, hOCR or the original, for the key that owns them."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from common.adapters import storage
from common.adapters.db import Document, Job
from common.config import Settings
from common.errors import BadRequest, JobNotCompleted, JobNotFound, ObjectMissing, OutputMissing
from common.models import JobStatus, Principal
from common.rules import jobs, outputs

# What can be downloaded, and the output record's name for each stored result.
KINDS = ("text", "pdf", "hocr", "original")
STORED_AS = {"pdf": outputs.SEARCHABLE_PDF, "hocr": outputs.HOCR}
# The status answer's `outputs` names, with the kind each one's API link downloads.
LINKED_KINDS = {outputs.SEARCHABLE_PDF: "pdf", outputs.HOCR: "hocr"}
SUFFIXES = {"text": ".txt", "pdf": ".ocr.pdf", "hocr": ".hocr"}
CONTENT_TYPES = {"text": "text/plain; charset=utf-8", "pdf": "application/pdf",
                 "hocr": "text/vnd.hocr+html; charset=utf-8"}


def download_path(job_id: str, kind: str) -> str:
    """Where a job's output is downloaded, from the gateway's root."""
    return f"/function/documents/{job_id}/download/{kind}"


def output_links(settings: Settings, job_id: str, stored: dict[str, Any], base: str) -> dict[str, Any]:
    """A status answer's `outputs`: API download URLs under `base` (OUTPUT_LINKS=api), or links signed for
    MinIO's public address (OUTPUT_LINKS=presigned). Records that are not keys (`pdfa`) pass as they are.

    Per read, never cached: a signed link outlives nothing, and `base` is the reader's own gateway address.
    """
    if settings.output_links == "presigned":
        return {name: storage.presigned_url(settings, key) if isinstance(key, str) else key
                for name, key in stored.items()}
    return {name: base + download_path(job_id, LINKED_KINDS.get(name, name)) if isinstance(key, str) else key
            for name, key in stored.items()}


@dataclass(frozen=True)
class Download:
    """What a download sends: its bytes (streamed), their type and length, and the name to save them under."""

    chunks: Iterator[bytes]
    content_type: str
    size: int
    filename: str

    def content_disposition(self) -> str:
        return attachment(self.filename)


def attachment(filename: str) -> str:
    """`attachment; filename="..."` (RFC 6266), with `filename*` (RFC 5987) when the name is not plain ASCII:
    the quoted name is then an ASCII rendering of it, for clients that read only that."""
    plain = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    # Quotes, backslashes and control characters cannot sit inside a quoted-string safely: dropped.
    plain = "".join(c for c in plain if c.isprintable() and c not in '"\\') or "download"
    if plain == filename:
        return f'attachment; filename="{plain}"'
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


def saved_name(original: str, kind: str) -> str:
    """The name a download is saved under: the original's stem with the kind's suffix (scan.pdf -> scan.ocr.pdf);
    the original keeps its own name."""
    name = PurePosixPath(original.replace("\\", "/")).name or "document"
    if kind == "original":
        return name
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return (stem or "document") + SUFFIXES[kind]


def job_of(settings: Settings, document_or_job_id: str, caller: Principal) -> tuple[Job, Document]:
    """The job an id names: a job's own id, or a document's (its current job, as status reads it). Someone
    else's is answered like a missing one."""
    owner = caller.owner_filter
    try:
        return jobs.get(settings, document_or_job_id, owner)
    except JobNotFound:
        shown = jobs.shown_by(settings, document_or_job_id, owner)
        if shown is None:
            raise JobNotFound(f"job {document_or_job_id} does not exist, nor a document of that id") from None
        return jobs.get(settings, shown, owner)


def download(settings: Settings, document_or_job_id: str, kind: str, caller: Principal) -> Download:
    """Open one output of a job (or of a document's current job) for the caller to stream.

    The original can be downloaded whatever its job's state; the outputs once the job completed.
    """
    if kind not in KINDS:
        raise BadRequest(f"download {kind[:20]!r} is not known; choose from {', '.join(KINDS)}")
    job, document = job_of(settings, document_or_job_id, caller)
    name = saved_name(document.filename, kind)
    if kind == "original":
        stream = storage.open_object(settings, document.bucket, document.object_key)
        return Download(stream.chunks, document.content_type or stream.content_type, stream.size, name)
    if job.status != JobStatus.COMPLETED:
        raise JobNotCompleted(f"job {job.id} is {job.status.value}; its {kind} exists once it is completed")
    if kind == "text":
        # The text lives in the job's row, not in the bucket: already read whole with the row.
        body = (job.text or "").encode()
        return Download(iter([body]), CONTENT_TYPES[kind], len(body), name)
    key = json.loads(job.outputs or "{}").get(STORED_AS[kind])
    if not isinstance(key, str):
        raise OutputMissing(f"job {job.id} made no {kind} output")
    try:
        stream = storage.open_object(settings, settings.s3_bucket, key)
    except ObjectMissing as e:
        raise OutputMissing(f"job {job.id}'s {kind} output is gone from the store", detail=e.detail) from e
    return Download(stream.chunks, CONTENT_TYPES[kind], stream.size, name)
