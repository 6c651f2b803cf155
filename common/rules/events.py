"""Parsing what reaches ocr-process: MinIO bucket notifications (S3 event JSON) or a direct retry by job id."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from common.adapters.storage import CREATED_EVENTS, user_metadata
from common.errors import InvalidEvent
from common.models import MAX_BUCKET_CHARS, MAX_ETAG_CHARS, MAX_OBJECT_KEY_BYTES

# The user metadata `upload` stores with an original, read back from the notification (or the object).
JOB_ID_KEY = "job-id"
REQUEST_ID_KEY = "request-id"
# MinIO's webhook and S3 send one record per event; a few more are allowed for batching senders. An
# event over the limit is refused whole (invalid_event, naming it) rather than cut: every record asks
# for a whole OCR job inside one invocation, and silently dropping the rest would lose objects unseen.
MAX_EVENT_RECORDS = 10


@dataclass(frozen=True)
class ObjectCreated:
    """One created object version, as identified by its notification record."""

    bucket: str
    key: str
    size: int
    etag: str
    content_type: str
    version_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def job_id(self) -> str | None:
        """Set by `upload`; a file dropped straight into the bucket has none."""
        return self.metadata.get(JOB_ID_KEY)

    @property
    def request_id(self) -> str | None:
        return self.metadata.get(REQUEST_ID_KEY)


@dataclass(frozen=True)
class ParsedEvent:
    """The objects a delivery created with new content, or the jobs a direct retry names."""

    objects: list[ObjectCreated]
    job_ids: list[str]
    # (job id, chunk number): one run of a large document's pages (common/rules/chunks.py).
    chunks: list[tuple[str, int]] = field(default_factory=list)


def _record(rec: object) -> ObjectCreated | None:
    if not isinstance(rec, dict):
        raise InvalidEvent("event record is not an object")
    # Tagging changes also arrive as s3:ObjectCreated:*; only the bucket rule's events mean new content.
    if str(rec.get("eventName", "")) not in CREATED_EVENTS:
        return None
    s3 = rec.get("s3")
    if not isinstance(s3, dict):
        raise InvalidEvent("event record has no s3 section")
    bucket = (s3.get("bucket") or {}).get("name")
    obj = s3.get("object") or {}
    raw_key = obj.get("key")
    raw_metadata = obj.get("userMetadata")
    if not bucket or not raw_key:
        raise InvalidEvent("event record lacks bucket name or object key")
    key = unquote_plus(str(raw_key))
    etag = str(obj.get("eTag") or "").strip('"')
    # What no store can hold (S3's own limits) cannot name an object: refused before any lookup.
    if len(str(bucket)) > MAX_BUCKET_CHARS:
        raise InvalidEvent(f"event record's bucket name has {len(str(bucket))} characters; the limit is "
                           f"{MAX_BUCKET_CHARS}")
    if len(key.encode()) > MAX_OBJECT_KEY_BYTES:
        raise InvalidEvent(f"event record's object key has {len(key.encode())} bytes; the limit is "
                           f"{MAX_OBJECT_KEY_BYTES}")
    if len(etag) > MAX_ETAG_CHARS:
        raise InvalidEvent(f"event record's eTag has {len(etag)} characters; the limit is {MAX_ETAG_CHARS}")
    try:
        size = int(obj.get("size") or 0)
    except (TypeError, ValueError) as e:
        raise InvalidEvent(f"event record has a malformed size: {obj.get('size')!r}") from e
    return ObjectCreated(
        bucket=str(bucket),
        # MinIO query-escapes keys in records (space is '+').
        key=key,
        size=size,
        etag=etag,
        content_type=str(obj.get("contentType") or ""),
        version_id=obj.get("versionId") or None,
        metadata=user_metadata(raw_metadata) if isinstance(raw_metadata, dict) else {},
    )


def parse_event(body: bytes) -> ParsedEvent:
    """Accept `{"Records": [...]}` (one or several), `{"job_id": "..."}` or `{"job_id": "...", "chunk": n}`;
    anything else is InvalidEvent."""
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidEvent(f"event body is not JSON: {e}") from e
    if not isinstance(data, dict):
        raise InvalidEvent("event body must be a JSON object with Records or job_id")
    if "job_id" in data:
        job_id = data["job_id"]
        if not isinstance(job_id, str) or not job_id or len(job_id) > 36:
            raise InvalidEvent("job_id must be a non-empty string of at most 36 characters")
        if "chunk" in data:
            chunk = data["chunk"]
            if not isinstance(chunk, int) or isinstance(chunk, bool) or not 0 <= chunk < 100_000:
                raise InvalidEvent("chunk must be a chunk number, an integer from 0")
            return ParsedEvent(objects=[], job_ids=[], chunks=[(job_id, chunk)])
        return ParsedEvent(objects=[], job_ids=[job_id])
    records = data.get("Records")
    if not isinstance(records, list):
        raise InvalidEvent("event body has no Records list")
    if len(records) > MAX_EVENT_RECORDS:
        raise InvalidEvent(f"the event has {len(records)} records; the limit is {MAX_EVENT_RECORDS} per event")
    parsed = (_record(rec) for rec in records)
    return ParsedEvent(objects=[obj for obj in parsed if obj is not None], job_ids=[])
