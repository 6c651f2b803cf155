"""Job lifecycle: create, claim under a fenced lease (lease.py), record pages, complete, fail, cancel; a job's reads.

Every change of a job's status is written here, MySQL first, then the status cache is told (cache.mark_changed)
and the transition logged. A chunk's own states are chunks.py's; a finished job's webhook is webhooks.py's.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, object_session

from common.adapters import cache, metrics
from common.adapters.db import Document, Job, Page, dialect, read, session_scope, utcnow
from common.config import Settings
from common.errors import JobInProgress, JobNotFound, PipelineError
from common.logging import get_logger
from common.models import CallbackState, JobStatus, PageResult, ResultWarning
from common.rules import lease, result_warnings

log = get_logger()
T = TypeVar("T")

# Where a transaction keeps the jobs it finished, for the metrics counted after its commit.
_FINISHED = "jobs_finished"


@dataclass(frozen=True)
class Claim:
    """Proof that this worker owns the job until the lease ends; the token fences stale workers."""

    job_id: str
    token: str
    lang: str
    request_id: str | None
    document: Document
    pdfa: bool = False  # the searchable PDF is to be made PDF/A-2b


def new_id() -> str:
    return lease.new_token()


def create(session: Session, document: Document, lang: str, max_attempts: int, request_id: str | None,
           owner_id: str | None, callback_url: str | None = None, pdfa: bool = False) -> Job:
    """A pending job for a document, inside the caller's transaction (document and job land together)."""
    now = utcnow()
    job = Job(
        id=new_id(),
        document_id=document.id,
        status=JobStatus.PENDING,
        lang=lang,
        attempts=0,
        max_attempts=max_attempts,
        pages_done=0,
        request_id=request_id,
        owner_id=owner_id,
        created_at=now,
        document_created_at=document.created_at,
        document_owner_id=document.owner_id,
        updated_at=now,
        # The completion webhook, owed once the job ends (rules/webhooks.py delivers it).
        callback_url=callback_url,
        callback_state=CallbackState.PENDING if callback_url else None,
        callback_attempts=0,
        pdfa=pdfa,
    )
    session.add(job)
    log.info("job.created", job_id=job.id, document_id=document.id, status=JobStatus.PENDING.value)
    return job


def show(session: Session, document_id: str, job_id: str) -> None:
    """From now on the document shows this job: documents.job_id names it, and of the document's jobs it alone
    has `shown` set (what a search filters its matches by, without reading their documents)."""
    session.execute(update(Document).where(Document.id == document_id).values(job_id=job_id)
                    .execution_options(synchronize_session=False))
    session.execute(update(Job).where(Job.document_id == document_id).values(shown=Job.id == job_id)
                    .execution_options(synchronize_session=False))


@contextmanager
def transaction(settings: Settings) -> Iterator[tuple[Session, list[Job]]]:
    """A transaction whose changed jobs are marked in the status cache only after MySQL committed."""
    changed: list[Job] = []
    with session_scope(settings) as session:
        yield session, changed
        marks = [(job.id, job.version) for job in changed]
        finished = session.info.pop(_FINISHED, [])
    for job_id, version in marks:
        cache.mark_changed(settings, job_id, version)
    # Counted once MySQL committed: a rolled-back transaction finished nothing.
    for status, error_code in finished:
        metrics.count(settings, metrics.JOBS_FINISHED, status=status, error_code=error_code or "")


def bump(job: Job, changed: list[Job]) -> None:
    job.version = job.version + 1
    job.updated_at = utcnow()
    changed.append(job)


def _log_transition(job_id: str, to: JobStatus, **fields: object) -> None:
    log.info("job.status_changed", job_id=job_id, status=to.value, **fields)


def claim(settings: Settings, job_id: str) -> Claim | None:
    """Compare-and-set pending (or processing with an expired lease) -> processing.

    Returns None when the job is already final (a duplicate delivery) or fanned out to chunks; raises
    JobInProgress while another worker's lease is live, so the queue tries again later and a crashed
    worker's job is picked up.
    """
    token = lease.new_token()
    now = utcnow()
    lease_until = lease.expiry(settings, now)
    with transaction(settings) as (session, changed):
        claimable = or_(
            Job.status == JobStatus.PENDING,
            and_(Job.status == JobStatus.PROCESSING, Job.lease_expires_at < now),
        )
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.attempts < Job.max_attempts, claimable)
            .values(
                status=JobStatus.PROCESSING,
                attempts=Job.attempts + 1,
                claim_token=token,
                lease_expires_at=lease_until,
                started_at=func.coalesce(Job.started_at, now),
                updated_at=now,
                # pages_done is kept: the pages an earlier attempt stored stay stored (and are overwritten in
                # place), so progress shown to a poller never goes back when a job is taken over.
                error_code=None,
                error_message=None,
                version=Job.version + 1,
            )
            .execution_options(synchronize_session=False)
        )
        job = session.get(Job, job_id, populate_existing=True)
        if job is None:
            raise JobNotFound(f"job {job_id} does not exist")
        if result.rowcount == 1:  # type: ignore[attr-defined]
            changed.append(job)
            document = session.get(Document, job.document_id)
            assert document is not None  # foreign key
            # The upload's request id, so this line joins the document's trail like the ones after it.
            trail = {"request_id": job.request_id} if job.request_id else {}
            _log_transition(job_id, JobStatus.PROCESSING, attempt=job.attempts, lease_until=lease_until.isoformat(),
                            **trail)
            return Claim(job_id=job_id, token=token, lang=job.lang, request_id=job.request_id, document=document,
                         pdfa=bool(job.pdfa))
        if job.status.is_final:
            log.info("job.claim_skipped", job_id=job_id, status=job.status.value, reason="already_final")
            return None
        if job.status == JobStatus.PROCESSING and job.lease_expires_at is None:
            # Fanned out (rules/chunks.py): its chunks carry it, and the last one assembles it.
            log.info("job.claim_skipped", job_id=job_id, status=job.status.value, reason="fanned_out")
            return None
        if job.status == JobStatus.PROCESSING and lease.is_live(job, now):
            wait = lease.retry_after(job, now)
            raise JobInProgress(f"job {job_id} is being processed by another worker; its lease ends in {wait} s",
                                headers={"Retry-After": str(wait)})
        # Out of attempts: the last worker died holding the lease each time.
        settle(job, changed, JobStatus.FAILED, now, error_code="attempts_exhausted",
                error_message=f"gave up after {job.attempts} attempts (JOB_MAX_ATTEMPTS={job.max_attempts})")
        return None


def owned(session: Session, claim: Claim) -> Job | None:
    """Lock the job row if this claim still owns it; a worker whose lease was taken over gets None."""
    return lease.held(session, Job, claim.token, Job.id == claim.job_id, Job.status == JobStatus.PROCESSING)


def renew_lease(settings: Settings, claim: Claim) -> bool:
    """Heartbeat: push the lease end forward while the worker is alive; False once the claim was lost."""
    return lease.renew(settings, Job, claim.token, Job.id == claim.job_id, Job.status == JobStatus.PROCESSING)


@contextmanager
def heartbeat(settings: Settings, renew: Callable[[], bool], name: str) -> Iterator[None]:
    """Call `renew` every third of the lease while the block runs, until it says the claim is gone.

    The lease can then stay short (a crashed worker's job is claimable again within seconds) however
    long a single page takes.
    """
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(settings.job_lease_seconds / 3):
            try:
                if not renew():
                    return
            except PipelineError as e:
                log.warning("job.lease_renew_failed", lease=name, error=str(e))

    thread = threading.Thread(target=beat, name=f"lease-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def lease_kept(settings: Settings, claim: Claim) -> AbstractContextManager[None]:
    """The job's lease renewed while the block runs, so only a dead worker loses it."""
    return heartbeat(settings, lambda: renew_lease(settings, claim), claim.job_id[:8])


def set_page_count(settings: Settings, claim: Claim, count: int) -> None:
    with transaction(settings) as (session, changed):
        job = owned(session, claim)
        if job is not None:
            job.page_count = count
            bump(job, changed)


def upsert_page(session: Session, job_id: str, page: PageResult) -> None:
    """Store one page of a job: a retried attempt overwrites its row, never adds a second."""
    values = dict(
        job_id=job_id,
        page_number=page.number,
        text=page.text,
        confidence=page.confidence,
        method=page.method,
        width=page.width,
        height=page.height,
        duration_ms=page.duration_ms,
        rotation=page.rotation,
        words=page.layout_json(),
        warnings=page.warnings_json(),
    )
    dialect.upsert(session, Page, values, key=("job_id", "page_number"))


def record_page(settings: Settings, claim: Claim, page: PageResult) -> bool:
    """Store one page (upsert: a retried attempt overwrites, never duplicates) and extend the lease."""
    with transaction(settings) as (session, changed):
        job = owned(session, claim)
        if job is None:
            log.warning("job.lease_lost", job_id=claim.job_id, page=page.number)
            return False
        upsert_page(session, claim.job_id, page)
        # The stored pages, not attempts' pages: a taken-over job's re-read page is not counted twice.
        job.pages_done = stored_pages(session, claim.job_id)
        job.lease_expires_at = lease.expiry(settings)
        bump(job, changed)
        log.info("job.page_done", job_id=claim.job_id, page=page.number, duration_ms=page.duration_ms,
                 confidence=page.confidence)
    page_read(settings, page)
    return True


def stored_pages(session: Session, job_id: str) -> int:
    return session.execute(select(func.count()).select_from(Page).where(Page.job_id == job_id)).scalar_one()


def page_read(settings: Settings, page: PageResult) -> None:
    """Count a stored page and its reading time in the pipeline's metrics."""
    metrics.count(settings, metrics.PAGES, method=page.method)
    metrics.observe(settings, metrics.PAGE_SECONDS, page.duration_ms / 1000, method=page.method)


def settle(job: Job, changed: list[Job], to: JobStatus, now: datetime, **fields: object) -> None:
    for name, value in fields.items():
        setattr(job, name, value)
    job.status = to
    lease.let_go(job)
    job.finished_at = now
    bump(job, changed)
    session = object_session(job)
    if session is not None and to.is_final:
        session.info.setdefault(_FINISHED, []).append((to.value, job.error_code))
    _log_transition(job.id, to, error_code=job.error_code)


def complete(settings: Settings, claim: Claim, outputs: dict[str, Any] | None = None,
             warnings: Iterable[ResultWarning] = ()) -> bool:
    """processing -> completed, with the full text assembled from the stored pages in order, and the job's
    warnings: its pages' gathered, and `warnings` of its own (a PDF/A that could not be made)."""
    with transaction(settings) as (session, changed):
        job = owned(session, claim)
        if job is None:
            log.warning("job.lease_lost", job_id=claim.job_id, at="complete")
            return False
        texts = session.execute(
            select(Page.text).where(Page.job_id == claim.job_id).order_by(Page.page_number)
        ).scalars().all()
        flagged = [(number, raw) for number, raw in session.execute(
            select(Page.page_number, Page.warnings).where(Page.job_id == claim.job_id, Page.warnings.is_not(None)))]
        settle(job, changed, JobStatus.COMPLETED, utcnow(), text="\n\f\n".join(texts),
               page_count=len(texts), pages_done=len(texts), outputs=json.dumps(outputs or {}),
               warnings=result_warnings.gathered(flagged, warnings))
        # The document now shows this result; a re-process's earlier job keeps its own, reachable by its id.
        show(session, job.document_id, job.id)
        return True


def fail(settings: Settings, claim: Claim, error: PipelineError) -> bool:
    """processing -> failed with the error's code; a retryable error (an outage) instead releases the job to
    pending without spending an attempt."""
    with transaction(settings) as (session, changed):
        job = owned(session, claim)
        if job is None:
            return False
        now = utcnow()
        if error.retryable:
            # Only outages are retryable (ServiceUnavailable): not the document's fault, so the attempt is
            # given back. JOB_MAX_ATTEMPTS then counts what it is for, workers dying on the document, and
            # a ten-second MinIO restart cannot use up a job's attempts in the queue's first retries.
            job.attempts = max(0, job.attempts - 1)
            job.status = JobStatus.PENDING
            lease.let_go(job)
            job.error_code = error.code
            job.error_message = error.message
            bump(job, changed)
            _log_transition(job.id, JobStatus.PENDING, error_code=error.code, retry=True)
            return True
        settle(job, changed, JobStatus.FAILED, now, error_code=error.code, error_message=error.message)
        return True


def fail_unclaimed(settings: Settings, job_id: str, error: PipelineError) -> None:
    """Fail a pending job that never reached OCR (e.g. its upload could not be stored)."""
    with transaction(settings) as (session, changed):
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or job.status.is_final:
            return
        settle(job, changed, JobStatus.FAILED, utcnow(), error_code=error.code, error_message=error.message)


def cancel_for_document(settings: Settings, document_id: str) -> list[str]:
    """Fail every unfinished job of a document with `cancelled`, and return all its job ids.

    Clearing the claim token fences off a worker still running such a job: its next page, its
    completion and its failure all find the claim gone and write nothing.
    """
    with transaction(settings) as (session, changed):
        found = list(session.execute(
            select(Job).where(Job.document_id == document_id).with_for_update()).scalars())
        now = utcnow()
        for job in found:
            if not job.status.is_final:
                settle(job, changed, JobStatus.FAILED, now, error_code="cancelled",
                        error_message="the document was deleted")
        return [job.id for job in found]


def was_cancelled(settings: Settings, job_id: str) -> bool:
    """Whether a job was cancelled by its document's deletion (its row may already be gone too)."""
    with session_scope(settings) as session:
        job = session.get(Job, job_id)
        return job is None or job.error_code == "cancelled"


def not_found(job_id: str) -> JobNotFound:
    """The one answer for a job that does not exist and for someone else's: ids leak nothing."""
    return JobNotFound(f"job {job_id} does not exist")


def get(settings: Settings, job_id: str, owner: str | None = None, replica: bool = False) -> tuple[Job, Document]:
    """A job and its document; with `owner`, only if that key owns the document. `replica`: a read that may
    be served by the read replica (db.read: only once it has every write the primary had)."""
    statement = select(Job, Document).join(Document, Document.id == Job.document_id).where(Job.id == job_id)
    if owner is not None:
        statement = statement.where(Document.owner_id == owner)

    def found(session: Session) -> tuple[Job, Document]:
        row = session.execute(statement).one_or_none()
        if row is None:
            raise not_found(job_id)
        return row[0], row[1]

    return _reading(settings, found, replica, "status")


def shown_by(settings: Settings, document_id: str, owner: str | None = None, replica: bool = False) -> str | None:
    """The job whose result a document shows (its `job_id` in list and describe); None if there is no such
    document, or it is someone else's when `owner` is given."""
    statement = select(Document.job_id).where(Document.id == document_id)
    if owner is not None:
        statement = statement.where(Document.owner_id == owner)
    return _reading(settings, lambda session: session.execute(statement).scalar_one_or_none(), replica, "status")


def pages_of(settings: Settings, job_id: str, first: int = 1, last: int | None = None,
             replica: bool = False) -> list[Page]:
    """The job's stored pages from `first` to `last` (inclusive; None: to the end), in order."""
    statement = select(Page).where(Page.job_id == job_id, Page.page_number >= first)
    if last is not None:
        statement = statement.where(Page.page_number <= last)
    statement = statement.order_by(Page.page_number)
    return _reading(settings, lambda session: list(session.execute(statement).scalars()), replica, "status pages")


def _reading(settings: Settings, work: Callable[[Session], T], replica: bool, purpose: str) -> T:
    """`work` in a read on the replica (db.read) or in a transaction on the primary."""
    if replica:
        return read(settings, work, purpose=purpose)
    with session_scope(settings) as session:
        return work(session)
