"""Taking documents in: an HTTP upload or an object dropped into the bucket becomes a document and a job."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from common.adapters import handoff, storage
from common.adapters.db import Document, Job, session_scope, utcnow
from common.config import Settings
from common.errors import (
    CallbackRefused,
    DropOwnerUnknown,
    FileTooLarge,
    InvalidFilename,
    InvalidLanguage,
    JobNotFound,
    PipelineError,
)
from common.logging import get_logger
from common.models import (
    MAX_CONTENT_TYPE_CHARS,
    MAX_FILENAME_BYTES,
    MAX_LANG_CHARS,
    MAX_REQUEST_ID_CHARS,
    Accepted,
    JobStatus,
    Principal,
)
from common.rules import apikeys, idempotency, jobs, webhooks
from common.rules.events import JOB_ID_KEY, REQUEST_ID_KEY, ObjectCreated

log = get_logger()


def _source_hash(identity: str) -> str:
    return hashlib.sha256(identity.encode()).hexdigest()


def safe_filename(name: str | None, fallback: str, refuse_long: bool = False) -> str:
    """The client's base name, kept readable but safe as one segment of an object key and in the schema.

    `.` and `..` are no names (as a key segment they are refused by MinIO, or climb out of the
    document's folder). A name over MAX_FILENAME_BYTES in UTF-8 is InvalidFilename with `refuse_long`
    (an upload: the client can send a shorter one) and cut at a character boundary otherwise (a dropped
    object's key, which nobody can change any more).
    """
    base = PurePosixPath((name or "").replace("\\", "/")).name
    base = unicodedata.normalize("NFC", base)
    # Control characters, lone surrogates (not encodable in UTF-8) and the separator.
    base = "".join(c for c in base if c != "/" and unicodedata.category(c) not in ("Cc", "Cs")).strip()
    if base in ("", ".", ".."):
        return fallback
    size = len(base.encode())
    if size > MAX_FILENAME_BYTES:
        if refuse_long:
            raise InvalidFilename(f"the file name has {size} bytes in UTF-8; the limit is {MAX_FILENAME_BYTES}")
        base = base.encode()[:MAX_FILENAME_BYTES].decode(errors="ignore").strip() or fallback
    return base


def accept_upload(
    settings: Settings,
    data: BinaryIO,
    size: int,
    filename: str,
    media_type: str,
    lang: str,
    request_id: str,
    owner_id: str | None,
    callback_url: str | None = None,
    pdfa: bool = False,
) -> Accepted:
    """Record document + pending job, then store the original; 202 is only answered once it is stored.

    The rows come first so the bucket notification, which may arrive before put_object returns,
    always finds its job. If storing fails the rows are deleted again (and the object too, in case it
    landed and only the answer was lost), so a refused upload leaves nothing a user can list or read.
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
        job = jobs.create(session, document, lang, settings.job_max_attempts, request_id, owner_id, callback_url,
                          pdfa)
        job_id = job.id
        jobs.show(session, document_id, job_id)
    metadata = {JOB_ID_KEY: job_id, "document-id": document_id, "lang": lang, REQUEST_ID_KEY: request_id}
    try:
        etag = storage.put_document(settings, key, data, size, media_type, metadata)
    except BaseException:
        _withdraw(settings, document_id, key)
        raise
    try:
        with session_scope(settings) as session:
            stored = session.get(Document, document_id)
            if stored is not None:
                stored.etag = etag
    except PipelineError as e:
        # The original is kept and its job recorded, so the notification will OCR it: the upload is
        # accepted; only the ETag, which nothing relies on for an upload, is missing.
        log.warning("document.etag_not_recorded", document_id=document_id, error=str(e))
    log.info("document.accepted", document_id=document_id, job_id=job_id, source="upload", size_bytes=size,
             content_type=media_type)
    handoff.submit_job(settings, job_id, request_id)
    return Accepted(job_id=job_id, document_id=document_id, status=JobStatus.PENDING.value)


@dataclass(frozen=True)
class Upload:
    """A document as an HTTP upload brings it, once the handler has parsed the request."""

    data: BinaryIO
    size: int
    filename: str
    media_type: str
    lang: str


def take_upload(settings: Settings, upload: Upload, request_id: str, caller: Principal, callback_url: str | None = None,
                pdfa: bool = False, idempotency_key: str | None = None) -> tuple[Accepted, bool]:
    """An HTTP upload's rules around accept_upload; returns (answer, replayed).

    A callback needs an API key (its webhook secret signs the events) and a URL the webhook's rules pass,
    refused here, at upload, naming the rule. With an Idempotency-Key the same request within 24 h gets the
    first answer (replayed True); the callback and a PDF/A choice are part of what a replay must match.
    """
    if callback_url is not None:
        if caller.key_id is None:
            raise CallbackRefused("callback_url needs an API key: the key's webhook secret signs the events")
        webhooks.check(settings, callback_url)

    def accept() -> Accepted:
        return accept_upload(settings, upload.data, upload.size, upload.filename, upload.media_type, upload.lang,
                             request_id, caller.key_id, callback_url, pdfa)

    if idempotency_key is None:
        return accept(), False
    # Absent, the callback and PDF/A add nothing to the fingerprint: it is as before they existed.
    extra = [*([callback_url] if callback_url else []), *(["output=pdfa"] if pdfa else [])]
    body = idempotency.fingerprint(upload.data, upload.filename, upload.lang, *extra)
    return idempotency.once(settings, caller.key_id or "-", idempotency_key, body, accept)


def _withdraw(settings: Settings, document_id: str, key: str) -> None:
    """Undo an upload whose original could not be stored: its object (if it landed after all) and its rows.

    Best effort, each step on its own: this runs while a service is failing, and the client's answer
    is the storing error whatever happens here. The object goes first, so a notification that still
    arrives finds no object rather than a job without rows.
    """
    try:
        storage.remove_objects(settings, settings.s3_bucket, [key])
    except PipelineError as e:
        log.warning("upload.withdraw_object_failed", document_id=document_id, error=str(e))
    try:
        with session_scope(settings) as session:
            # Jobs and pages go with the document (ON DELETE CASCADE).
            session.execute(delete(Job).where(Job.document_id == document_id))
            session.execute(delete(Document).where(Document.id == document_id))
        log.info("upload.withdrawn", document_id=document_id)
    except PipelineError as e:
        log.error("upload.withdraw_rows_failed", document_id=document_id, error=str(e))


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
    job_id = _upload_job_id(settings, obj)
    if not job_id:
        return _drop_job(settings, obj)
    with session_scope(settings) as session:
        if session.get(Job, job_id) is not None:
            return job_id
    log.warning("event.unknown_job", job_id=job_id, key=obj.key)
    raise JobNotFound(f"object {obj.bucket}/{obj.key} names job {job_id}, which does not exist")


def _upload_job_id(settings: Settings, obj: ObjectCreated) -> str | None:
    """The job an object of `upload`'s names (in its event, else in the object's own metadata); None for a drop."""
    # Only `upload` writes under the upload prefix; elsewhere a job id in the metadata is whatever the
    # dropper wrote, and honouring it would let a drop run (or hijack) someone else's job.
    if not obj.key.startswith(settings.upload_prefix):
        return None
    if obj.job_id is not None:
        return obj.job_id
    # Our own upload whose record lacked user metadata: read it from the object, never register twice.
    return storage.stat_object(settings, obj.bucket, obj.key).metadata.get(JOB_ID_KEY)


def _drop_job(settings: Settings, obj: ObjectCreated) -> str:
    """A dropped file's job: the one an earlier delivery of the same object version made, or a new one."""
    version = obj.version_id or obj.etag
    identity = _source_hash(f"drop:{obj.bucket}/{obj.key}@{version}")
    existing = _job_of_drop(settings, identity)
    if existing is not None:
        log.info("event.duplicate_object", job_id=existing, key=obj.key)
        return existing
    lang = obj.metadata.get("lang") or settings.default_lang
    if len(lang) > MAX_LANG_CHARS:
        raise InvalidLanguage(f"the object's lang metadata has {len(lang)} characters; the limit is {MAX_LANG_CHARS}")
    owner_id = drop_owner(settings, obj.key)
    # An event is only a claim: rows are made for objects that exist, so a flood of events naming
    # nothing makes nothing (ObjectMissing, not retried).
    head = storage.stat_object(settings, obj.bucket, obj.key)
    request_id = obj.request_id if obj.request_id and len(obj.request_id) <= MAX_REQUEST_ID_CHARS else None
    try:
        with session_scope(settings) as session:
            document = _dropped_document(obj, head.content_type or obj.content_type, head.size, identity, owner_id)
            session.add(document)
            session.flush()
            job = jobs.create(session, document, lang, settings.job_max_attempts, request_id, owner_id,
                              pdfa=settings.output_pdfa)
            jobs.show(session, document.id, job.id)
            log.info("document.accepted", document_id=document.id, job_id=job.id, source="drop", key=obj.key)
            return job.id
    except IntegrityError:
        # A concurrent delivery of the same object version inserted first.
        found = _job_of_drop(settings, identity)
        if found is None:
            raise
        log.info("event.duplicate_object", job_id=found, key=obj.key)
        return found


def _dropped_document(obj: ObjectCreated, content_type: str, size: int, identity: str,
                      owner_id: str | None) -> Document:
    return Document(
        id=jobs.new_id(),
        filename=safe_filename(obj.key, "document"),
        # Only a claim (OCR decides from the bytes); one too long for the column is no type at all.
        content_type=content_type if 0 < len(content_type) <= MAX_CONTENT_TYPE_CHARS else "application/octet-stream",
        size_bytes=size,
        bucket=obj.bucket,
        object_key=obj.key,
        etag=obj.etag or None,
        source="drop",
        source_hash=identity,
        created_at=utcnow(),
        owner_id=owner_id,
    )


def _job_of_drop(settings: Settings, identity: str) -> str | None:
    with session_scope(settings) as session:
        return session.execute(
            select(Job.id).join(Document, Document.id == Job.document_id).where(Document.source_hash == identity)
            .order_by(Job.created_at).limit(1)
        ).scalar_one_or_none()
