"""The sweep: unfinished jobs nothing is running any more, found and settled.

Every path that makes a job also makes sure something runs it (the upload's hand-off, MinIO's notification,
the queue's retries), but a process killed at the wrong moment can still leave one behind: an upload killed
between its rows and its object, or a job whose every delivery was lost. The scheduled run (the local stack's
and compose's `ocr-pipeline retention --every`) sweeps them, so no job stays unfinished past
`SWEEP_AFTER_SECONDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, delete, or_, select

from common.adapters import handoff, storage
from common.adapters.db import Document, Job, session_scope, utcnow
from common.config import Settings
from common.errors import ObjectMissing
from common.logging import get_logger
from common.models import CallbackState, JobStatus
from common.rules import chunks, jobs, webhooks

log = get_logger()


@dataclass(frozen=True)
class SweepReport:
    withdrawn: int  # uploads whose object never landed: rows removed, as a refused upload leaves none
    failed: int  # drops whose object went away before OCR: failed with object_missing
    resubmitted: int  # jobs with their object, handed to ocr-process again
    called_back: int  # finished jobs whose completion webhook was left owed (the worker died delivering it)
    chunks_resubmitted: int = 0  # chunks of a fanned-out job whose invocations were lost


def _stale(settings: Settings, batch: int) -> list[tuple[Job, Document]]:
    cutoff = utcnow() - timedelta(seconds=settings.sweep_after_seconds)
    with session_scope(settings) as session:
        rows = session.execute(
            select(Job, Document).join(Document, Document.id == Job.document_id).where(or_(
                and_(Job.status == JobStatus.PENDING, Job.updated_at < cutoff),
                # A claim whose lease ran out long ago, and no retry came for it.
                and_(Job.status == JobStatus.PROCESSING, Job.lease_expires_at < cutoff),
            )).order_by(Job.created_at).limit(batch)
        ).all()
        session.expunge_all()
    return [(job, document) for job, document in rows]


def _owed_webhooks(settings: Settings, batch: int) -> list[str]:
    """Finished jobs whose webhook is still `pending` long after they finished: ocr-process delivers right
    after a job ends and retries for about a minute, so these were left by a worker that died meanwhile."""
    cutoff = utcnow() - timedelta(seconds=settings.sweep_after_seconds)
    with session_scope(settings) as session:
        return list(session.execute(
            select(Job.id).where(Job.callback_state == CallbackState.PENDING,
                                 Job.status.in_([JobStatus.COMPLETED, JobStatus.FAILED]), Job.finished_at < cutoff)
            .order_by(Job.finished_at).limit(batch)
        ).scalars())


def sweep(settings: Settings, batch: int = 200) -> SweepReport:
    """One pass over at most `batch` stale jobs, then over a few owed webhooks."""
    withdrawn = failed = resubmitted = 0
    for job, document in _stale(settings, batch):
        try:
            storage.stat_object(settings, document.bucket, document.object_key)
        except ObjectMissing:
            if document.source == "upload" and document.etag is None:
                # Killed before the object was stored: the client never had its 202.
                with session_scope(settings) as session:
                    session.execute(delete(Job).where(Job.document_id == document.id))
                    session.execute(delete(Document).where(Document.id == document.id))
                log.warning("sweep.upload_withdrawn", document_id=document.id, job_id=job.id)
                withdrawn += 1
            else:
                jobs.fail_unclaimed(settings, job.id, ObjectMissing(
                    "the document's original was removed from the bucket before it was read"))
                log.warning("sweep.object_missing", document_id=document.id, job_id=job.id)
                failed += 1
            continue
        if handoff.submit_job(settings, job.id, job.request_id):
            log.warning("sweep.resubmitted", job_id=job.id, status=job.status.value)
            resubmitted += 1
    chunks_resubmitted = 0
    cutoff = utcnow() - timedelta(seconds=settings.sweep_after_seconds)
    for job_id, number, request_id in chunks.stalled(settings, cutoff, batch):
        if handoff.submit_chunk(settings, job_id, number, request_id):
            log.warning("sweep.chunk_resubmitted", job_id=job_id, chunk=number)
            chunks_resubmitted += 1
    called_back = 0
    for job_id in _owed_webhooks(settings, batch=20):
        webhooks.deliver_quietly(settings, job_id)
        called_back += 1
    report = SweepReport(withdrawn, failed, resubmitted, called_back, chunks_resubmitted)
    log.info("sweep.run", **report.__dict__)
    return report
