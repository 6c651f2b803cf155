"""A caller's documents once they are in: describe, re-process with another language, delete, expire."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select

from common.adapters import cache, handoff, storage
from common.adapters.db import Document, Job, Page, session_scope, utcnow
from common.config import Settings
from common.errors import DocumentBusy, DocumentNotFound, QueueUnavailable
from common.logging import get_logger
from common.models import TRUSTED, Principal
from common.rules import jobs, outputs
from common.rules.intake import Accepted
from common.rules.status import document_fields, iso

log = get_logger()


def _not_found(document_id: str) -> DocumentNotFound:
    # Someone else's document is answered exactly like a missing one.
    return DocumentNotFound(f"document {document_id} does not exist")


def _owned_document(settings: Settings, document_id: str, caller: Principal) -> Document:
    statement = select(Document).where(Document.id == document_id)
    if caller.owner_filter is not None:
        statement = statement.where(Document.owner_id == caller.owner_filter)
    with session_scope(settings) as session:
        document = session.execute(statement).scalar_one_or_none()
    if document is None:
        raise _not_found(document_id)
    return document


def describe(settings: Settings, document_id: str, caller: Principal) -> dict[str, Any]:
    """The document, the job whose result it shows, and every job it has had (newest first)."""
    document = _owned_document(settings, document_id, caller)
    with session_scope(settings) as session:
        history = list(session.execute(
            select(Job).where(Job.document_id == document.id).order_by(Job.created_at.desc())).scalars())
    return {
        **document_fields(document),
        "created_at": iso(document.created_at),
        "job_id": document.job_id,
        "jobs": [{"job_id": job.id, "status": job.status.value, "lang": job.lang, "created_at": iso(job.created_at),
                  "finished_at": iso(job.finished_at),
                  "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None}
                 for job in history],
    }


def reprocess(settings: Settings, document_id: str, caller: Principal, lang: str,
              request_id: str | None) -> Accepted:
    """A new job on the same stored original. The document keeps showing its previous result until
    the new job completes (and keeps it if the new one fails)."""
    owner = caller.owner_filter
    with session_scope(settings) as session:
        statement = select(Document).where(Document.id == document_id).with_for_update()
        if owner is not None:
            statement = statement.where(Document.owner_id == owner)
        document = session.execute(statement).scalar_one_or_none()
        if document is None:
            raise _not_found(document_id)
        running = session.execute(
            select(Job.id, Job.status, Job.pdfa).where(Job.document_id == document.id)
            .order_by(Job.created_at.desc()).limit(1)).one_or_none()
        if running is not None and not running.status.is_final:
            raise DocumentBusy(f"document {document_id} has job {running.id} {running.status.value}; "
                               "re-process it once that job is completed or failed")
        # The output the document was asked for when it came in (PDF/A or not) stays the same.
        job = jobs.create(session, document, lang, settings.job_max_attempts, request_id,
                          caller.key_id or document.owner_id,
                          pdfa=bool(running.pdfa) if running is not None else settings.output_pdfa)
        job_id = job.id
    # No object is written, so no bucket notification follows: the hand-off is the only way in.
    if not handoff.submit_job(settings, job_id, request_id):
        error = QueueUnavailable("the job could not be queued (the gateway's async queue did not answer); "
                                 "re-process again later")
        jobs.fail_unclaimed(settings, job_id, error)
        raise error
    log.info("document.reprocess", document_id=document_id, job_id=job_id, lang=lang)
    return Accepted(job_id=job_id, document_id=document_id, status="pending")


def delete_document(settings: Settings, document_id: str, caller: Principal) -> None:
    """Remove a document and everything made from it: original, results, rows, cached status.

    Order matters for "nothing remains": running jobs are cancelled first (their workers can write
    nothing more), the status cache is buried next (no cached text outlives the rows), then the
    objects and last the rows. A failure at any step leaves the rows, so the same delete can be
    sent again and finishes the job.
    """
    document = _owned_document(settings, document_id, caller)
    job_ids = jobs.cancel_for_document(settings, document.id)
    cache.bury_status(settings, job_ids)
    storage.remove_objects(settings, document.bucket, [document.object_key])
    for job_id in job_ids:
        storage.remove_prefix(settings, outputs.result_prefix(settings, job_id))
    with session_scope(settings) as session:
        if job_ids:
            session.execute(delete(Page).where(Page.job_id.in_(job_ids)))
            session.execute(delete(Job).where(Job.id.in_(job_ids)))
        session.execute(delete(Document).where(Document.id == document.id))
    log.info("document.deleted", document_id=document.id, jobs=len(job_ids))


def expire(settings: Settings, batch: int = 100) -> int:
    """Delete documents older than RETENTION_DAYS (0: keep forever); returns how many went."""
    if settings.retention_days <= 0:
        return 0
    cutoff = utcnow() - timedelta(days=settings.retention_days)
    removed = 0
    while True:
        with session_scope(settings) as session:
            ids = list(session.execute(
                select(Document.id).where(Document.created_at < cutoff).order_by(Document.created_at).limit(batch)
            ).scalars())
        for document_id in ids:
            delete_document(settings, document_id, TRUSTED)
        removed += len(ids)
        if len(ids) < batch:
            break
    log.info("retention.run", removed=removed, retention_days=settings.retention_days)
    return removed
