"""Taking documents in: an HTTP upload or an object dropped into the bucket becomes a document and a job."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from common.adapters import handoff, storage
from common.adapters.db import Document, Job, session_scope, utcnow
from common.config import Settings
from common.errors import DropOwnerUnknown, FileTooLarge, JobNotFound, PipelineError
from common.logging import get_logger
from common.models import JobStatus
from common.rules import apikeys, jobs
from common.rules.events import JOB_ID_KEY, REQUEST_ID_KEY, ObjectCreated

log = get_logger()


@dataclass(frozen=True)
class Accepted:
    job_id: str
    document_id: str
    status: str

    def status_url(self, base_url: str) -> str:
        return f"{base_url}/function/status/{self.job_id}"

    def to_dict(self, base_url: str) -> dict[str, str]:
        return {"job_id": self.job_id, "document_id": self.document_id, "status": self.status,
                "status_url": self.status_url(base_url)}


def _source_hash(identity: str) -> str:
    return hashlib.sha256(identity.encode()).hexdigest()


def safe_filename(name: str | None, fallback: str) -> str:
    """The client's base name, kept readable but safe inside an object key and a header."""
    base = PurePosixPath((name or "").replace("\\", "/")).name
    base = unicodedata.normalize("NFC", base)
    base = re.sub(r"[\x00-\x1f\x7f/]", "", base).strip()
    return (base or fallback)[:200]


def accept_upload(
    settings: Settings,
    data: BinaryIO,
    size: int,
    filename: str,
    media_type: str,
    lang: str,
    request_id: str,
    owner_id: str | None,
) -> Accepted:
    """Record document + pending job, then store the original; 202 is only answered once it is stored.

    The rows come first so the bucket notification always finds its job; if storing fails the job is
    marked failed and the error reaches the client, so nothing is reported accepted that was not kept.
    """
    if size > settings.max_upload_bytes:
        raise FileTooLarge(f"the file has {size} bytes; the limit is {settings.max_upload_bytes} (MAX_UPLOAD_BYTES)")
    document_id = jobs.new_id()
    key = f"{settings.upload_prefix}{document_id}/{filename}"
    with session_scope(settings) as session:
        document = Document(
            id=document_id,
            filename=filename,
            content_type=media_type,
            size_bytes=size,
            bucket=settings.s3_bucket,
            object_key=key,
            source="upload",
            source_hash=_source_hash(f"upload:{document_id}"),
            created_at=utcnow(),
            owner_id=owner_id,
        )
        session.add(document)
        session.flush()
        job = jobs.create(session, document, lang, settings.job_max_attempts, request_id, owner_id)
        document.job_id = job_id = job.id
    metadata = {JOB_ID_KEY: job_id, "document-id": document_id, "lang": lang, REQUEST_ID_KEY: request_id}
    try:
        etag = storage.put_document(settings, key, data, size, media_type, metadata)
    except PipelineError as e:
        jobs.fail_unclaimed(settings, job_id, e)
        raise
    with session_scope(settings) as session:
        stored = session.get(Document, document_id)
        if stored is not None:
            stored.etag = etag
    log.info("document.accepted", document_id=document_id, job_id=job_id, source="upload", size_bytes=size,
             content_type=media_type)
    handoff.submit_job(settings, job_id, request_id)
    return Accepted(job_id=job_id, document_id=document_id, status=JobStatus.PENDING.value)


def drop_owner(settings: Settings, key: str) -> str | None:
    """Who owns a dropped object: the key named by its inbox/<key id>/ folder, else INBOX_OWNER.

    A first folder shaped like a key id must name a live key: a file put in a revoked or mistyped
    key's folder is refused rather than handed to someone else.
    """
    if not settings.auth:
        return None
    inside = key[len(settings.inbox_prefix):] if key.startswith(settings.inbox_prefix) else ""
    folder, slash, _ = inside.partition("/")
    if slash and apikeys.KEY_ID.fullmatch(folder):
        if apikeys.is_live(settings, folder):
            return folder
        raise DropOwnerUnknown(f"{key!r} is in the folder of key {folder}, which does not exist or was revoked")
    if settings.inbox_owner:
        return settings.inbox_owner
    raise DropOwnerUnknown(f"{key!r} is in no key's folder ({settings.inbox_prefix}<key id>/) and INBOX_OWNER is not "
                           "set, so nobody would own it")


def job_for_object(settings: Settings, obj: ObjectCreated) -> str:
    """The job a notified object belongs to: the upload's own, or a new one for a dropped file.

    Deliveries are at-least-once, so a drop is keyed by bucket/key/etag under a unique index: the
    second delivery of the same object version finds the first one's job instead of making another.
    """
    job_id = obj.job_id
    if job_id is None and obj.key.startswith(settings.upload_prefix):
        # Our own upload whose record lacked user metadata: read it from the object, never register twice.
        job_id = storage.stat_object(settings, obj.bucket, obj.key).metadata.get(JOB_ID_KEY)
    if job_id:
        with session_scope(settings) as session:
            if session.get(Job, job_id) is not None:
                return job_id
        log.warning("event.unknown_job", job_id=job_id, key=obj.key)
        raise JobNotFound(f"object {obj.bucket}/{obj.key} names job {job_id}, which does not exist")
    version = obj.version_id or obj.etag
    identity = _source_hash(f"drop:{obj.bucket}/{obj.key}@{version}")
    lang = obj.metadata.get("lang") or settings.default_lang
    owner_id = drop_owner(settings, obj.key)
    try:
        with session_scope(settings) as session:
            document = Document(
                id=jobs.new_id(),
                filename=safe_filename(obj.key, "document"),
                content_type=obj.content_type or "application/octet-stream",
                size_bytes=obj.size,
                bucket=obj.bucket,
                object_key=obj.key,
                etag=obj.etag or None,
                source="drop",
                source_hash=identity,
                created_at=utcnow(),
                owner_id=owner_id,
            )
            session.add(document)
            session.flush()
            job = jobs.create(session, document, lang, settings.job_max_attempts, obj.request_id, owner_id)
            document.job_id = job.id
            log.info("document.accepted", document_id=document.id, job_id=job.id, source="drop", key=obj.key)
            return job.id
    except IntegrityError:
        with session_scope(settings) as session:
            existing = session.execute(
                select(Job.id).join(Document, Document.id == Job.document_id).where(Document.source_hash == identity)
            ).scalar_one()
            log.info("event.duplicate_object", job_id=existing, key=obj.key)
            return existing
