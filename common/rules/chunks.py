"""Fan-out: a large PDF's pages OCRed in runs (chunks), each by an async invocation of ocr-process of its own.

The worker that claims such a job splits the PDF into runs of OCR_CHUNK_PAGES pages, stores them beside the
results, records one chunk row per run and queues one invocation per chunk, then lets go of the job: the job
stays `processing` with no lease (nobody claims it again), and its progress counts pages across chunks.

A chunk is claimed like a job (a lease kept alive while its worker lives, a fresh token per claim, attempts),
so a chunk whose worker died is taken over when the queue delivers it again, and the old worker's writes are
refused. Pages are stored by their number in the document, so a retried chunk overwrites, never duplicates.
The worker that finishes the last chunk takes the job again and assembles it: the runs' searchable PDFs and
hOCR joined in order, the text from the stored pages, status `completed`. A chunk that fails for good fails
the job with its code; the other chunks then find the job final and stop.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from common.adapters import handoff, storage
from common.adapters.db import Document, Job, JobChunk, session_scope, utcnow
from common.config import Settings
from common.engine.pdf import split as pdf_split
from common.engine.recognition import Outputs
from common.errors import JobInProgress, PipelineError, TooManyPages
from common.logging import get_logger
from common.models import ChunkStatus, JobStatus, PageResult
from common.rules import jobs, lease, outputs

log = get_logger()

PENDING, PROCESSING, DONE = ChunkStatus.PENDING, ChunkStatus.PROCESSING, ChunkStatus.DONE
_SEARCHABLE, _HOCR = "searchable.pdf", "ocr.hocr"


@dataclass(frozen=True)
class ChunkClaim:
    """Proof that this worker owns one chunk until its lease ends; the token fences a worker that lost it."""

    job_id: str
    number: int
    first_page: int
    last_page: int
    token: str
    lang: str
    request_id: str | None


def runs_prefix(settings: Settings, job_id: str) -> str:
    return outputs.result_prefix(settings, job_id) + "runs/"


def _run_key(settings: Settings, job_id: str, number: int, name: str = "") -> str:
    return f"{runs_prefix(settings, job_id)}{number:05d}" + (f"/{name}" if name else ".pdf")


def pages_to_split(settings: Settings, path: Path, media_type: str) -> int | None:
    """The page count of a PDF to fan out, or None: not a PDF, splitting off, or few enough pages for one call."""
    if media_type != "application/pdf" or settings.ocr_chunk_pages <= 0:
        return None
    count = pdf_split.count_pages(path)
    if count > settings.max_pages:
        raise TooManyPages(f"the PDF has {count} pages; the limit is {settings.max_pages} (MAX_PAGES)")
    return count if count > settings.ocr_chunk_pages else None


def fan_out(settings: Settings, claim: jobs.Claim, path: Path, count: int, workdir: Path) -> bool:
    """Split, store the runs, record the chunks and queue them; False when the job's claim was lost meanwhile."""
    runs = pdf_split.split(path, settings.ocr_chunk_pages, workdir)
    for number, run in enumerate(runs):
        storage.put_file(settings, _run_key(settings, claim.job_id, number), run.path, "application/pdf")
        run.path.unlink()
    now = utcnow()
    with jobs.transaction(settings) as (session, changed):
        job = jobs.owned(session, claim)
        if job is None:
            log.warning("job.lease_lost", job_id=claim.job_id, at="fan_out")
            return False
        # A fan-out cut short by a dead worker left chunk rows behind: this one starts the chunks afresh. Its
        # stored pages stay (the chunks overwrite them by number), so progress shown never goes back.
        session.execute(delete(JobChunk).where(JobChunk.job_id == claim.job_id))
        session.add_all(JobChunk(job_id=claim.job_id, number=number, first_page=run.first, last_page=run.last,
                                 status=PENDING, attempts=0, updated_at=now) for number, run in enumerate(runs))
        job.page_count, job.pages_done = count, jobs.stored_pages(session, claim.job_id)
        # Let go of the job: no lease, no token. claim() never takes a processing job without a lease, and the
        # chunks carry the work from here.
        lease.let_go(job)
        jobs.bump(job, changed)
    log.info("job.fanned_out", job_id=claim.job_id, pages=count, chunks=len(runs),
             pages_per_chunk=settings.ocr_chunk_pages)
    for number in range(len(runs)):
        if not handoff.submit_chunk(settings, claim.job_id, number, claim.request_id):
            log.warning("chunk.submit_failed", job_id=claim.job_id, chunk=number)  # the sweep queues it later
    return True


def claim(settings: Settings, job_id: str, number: int) -> ChunkClaim | None:
    """Compare-and-set pending (or processing with an expired lease) -> processing; None when there is nothing
    to do (the chunk is done, the job final or gone); JobInProgress while another worker's lease is live."""
    now = utcnow()
    with jobs.transaction(settings) as (session, changed):
        job = session.get(Job, job_id, with_for_update=True)
        chunk = session.get(JobChunk, (job_id, number), with_for_update=True)
        if job is None or chunk is None or job.status.is_final or chunk.status == DONE:
            log.info("chunk.claim_skipped", job_id=job_id, chunk=number,
                     job_status=job.status.value if job else None, chunk_status=chunk.status if chunk else None)
            return None
        if chunk.status == PROCESSING and lease.is_live(chunk, now):
            wait = lease.retry_after(chunk, now)
            raise JobInProgress(f"chunk {number} of job {job_id} is being read by another worker; its lease ends "
                                f"in {wait} s", headers={"Retry-After": str(wait)})
        if chunk.attempts >= job.max_attempts:
            jobs.settle(job, changed, JobStatus.FAILED, now, error_code="attempts_exhausted",
                        error_message=f"pages {chunk.first_page}-{chunk.last_page} were given up after "
                                      f"{chunk.attempts} attempts (JOB_MAX_ATTEMPTS={job.max_attempts})")
            return None
        chunk.status = PROCESSING
        token = lease.take(settings, chunk, now)
        chunk.attempts += 1
        chunk.updated_at = now
        log.info("chunk.claimed", job_id=job_id, chunk=number, pages=f"{chunk.first_page}-{chunk.last_page}",
                 attempt=chunk.attempts)
        return ChunkClaim(job_id, number, chunk.first_page, chunk.last_page, token, job.lang, job.request_id)


def _owned(session: Session, cc: ChunkClaim) -> JobChunk | None:
    """The chunk's row locked, if this claim still holds it."""
    return lease.held(session, JobChunk, cc.token, *_processing(cc))


def renew(settings: Settings, cc: ChunkClaim) -> bool:
    return lease.renew(settings, JobChunk, cc.token, *_processing(cc))


def _processing(cc: ChunkClaim) -> tuple[ColumnElement[bool], ...]:
    return JobChunk.job_id == cc.job_id, JobChunk.number == cc.number, JobChunk.status == PROCESSING


def lease_kept(settings: Settings, cc: ChunkClaim) -> AbstractContextManager[None]:
    return jobs.heartbeat(settings, lambda: renew(settings, cc), f"{cc.job_id[:8]}-{cc.number}")


def run_path(settings: Settings, cc: ChunkClaim, workdir: Path) -> Path:
    """The chunk's run of pages, fetched from where fan_out stored it."""
    path = workdir / "run.pdf"
    storage.download_to(settings, settings.s3_bucket, _run_key(settings, cc.job_id, cc.number), path)
    return path


def record_page(settings: Settings, cc: ChunkClaim, page: PageResult) -> bool:
    """Store one page under its number in the document; progress is the count of the job's stored pages."""
    with jobs.transaction(settings) as (session, changed):
        chunk = _owned(session, cc)
        job = session.get(Job, cc.job_id, with_for_update=True)
        if chunk is None or job is None or job.status != JobStatus.PROCESSING:
            log.warning("chunk.lease_lost", job_id=cc.job_id, chunk=cc.number, page=page.number)
            return False
        number = page.number + cc.first_page - 1
        jobs.upsert_page(session, cc.job_id, replace(page, number=number))
        job.pages_done = jobs.stored_pages(session, cc.job_id)
        chunk.lease_expires_at = lease.expiry(settings)
        jobs.bump(job, changed)
        log.info("job.page_done", job_id=cc.job_id, chunk=cc.number, page=number, duration_ms=page.duration_ms,
                 confidence=page.confidence)
    jobs.page_read(settings, page)
    return True


def store_outputs(settings: Settings, cc: ChunkClaim, produced: Outputs) -> None:
    if produced.searchable_pdf is not None:
        storage.put_file(settings, _run_key(settings, cc.job_id, cc.number, _SEARCHABLE), produced.searchable_pdf,
                         "application/pdf")
    if produced.hocr is not None:
        storage.put_file(settings, _run_key(settings, cc.job_id, cc.number, _HOCR), produced.hocr,
                         "text/vnd.hocr+html; charset=utf-8")


def finish(settings: Settings, cc: ChunkClaim) -> jobs.Claim | None:
    """Mark the chunk done; for the worker that finished the last one, a claim of the job to assemble it."""
    now = utcnow()
    with jobs.transaction(settings) as (session, changed):
        job = session.get(Job, cc.job_id, with_for_update=True)  # one finisher at a time sees the count
        chunk = _owned(session, cc)
        if job is None or chunk is None or job.status != JobStatus.PROCESSING:
            log.warning("chunk.lease_lost", job_id=cc.job_id, chunk=cc.number, at="finish")
            return None
        chunk.status, chunk.updated_at = DONE, now
        lease.let_go(chunk)
        left = session.execute(select(func.count()).select_from(JobChunk).where(
            JobChunk.job_id == cc.job_id, JobChunk.status != DONE)).scalar_one()
        log.info("chunk.done", job_id=cc.job_id, chunk=cc.number, chunks_left=left)
        if left:
            return None
        return _take_for_assembly(settings, session, changed, job)


def _take_for_assembly(settings: Settings, session: Session, changed: list[Job], job: Job) -> jobs.Claim:
    """The job claimed again, by the worker that finished its last chunk, to put it together."""
    token = lease.take(settings, job, utcnow())
    jobs.bump(job, changed)
    document = session.get(Document, job.document_id)
    assert document is not None  # foreign key
    return jobs.Claim(job_id=job.id, token=token, lang=job.lang, request_id=job.request_id,
                      document=document, pdfa=bool(job.pdfa))


def state(settings: Settings, job_id: str) -> tuple[int, int]:
    """(chunks, chunks done) of a job; (0, 0) for a job that was not fanned out."""
    with session_scope(settings) as session:
        total, done = session.execute(
            select(func.count(), func.coalesce(func.sum(JobChunk.status == DONE), 0))
            .where(JobChunk.job_id == job_id)).one()
        return int(total), int(done)


def release(settings: Settings, cc: ChunkClaim) -> None:
    """An outage stopped the chunk: back to pending with its attempt given back, for the queue's next try."""
    with session_scope(settings) as session:
        chunk = _owned(session, cc)
        if chunk is not None:
            chunk.status = PENDING
            lease.let_go(chunk)
            chunk.attempts = max(0, chunk.attempts - 1)
            chunk.updated_at = utcnow()


def assemble(settings: Settings, job_id: str, workdir: Path) -> Outputs:
    """The runs' outputs joined, in page order, into the document's searchable PDF and hOCR."""
    with session_scope(settings) as session:
        numbers = list(session.execute(select(JobChunk.number).where(JobChunk.job_id == job_id)
                                       .order_by(JobChunk.number)).scalars())
    parts: dict[str, list[Path]] = {_SEARCHABLE: [], _HOCR: []}
    for number in numbers:
        for name in parts:
            path = workdir / f"{number:05d}-{name}"
            try:
                storage.download_to(settings, settings.s3_bucket, _run_key(settings, job_id, number, name), path)
            except PipelineError as e:
                if e.code != "object_missing":
                    raise
                continue  # the engine did not write this output for that run
            parts[name].append(path)
    complete = {name: len(found) == len(numbers) and bool(numbers) for name, found in parts.items()}
    return Outputs(
        searchable_pdf=pdf_split.join_searchable(parts[_SEARCHABLE], workdir / "searchable.pdf",
                                                 timeout=settings.ocr_page_timeout)
        if complete[_SEARCHABLE] else None,
        hocr=pdf_split.join_hocr(parts[_HOCR], workdir / "ocr.hocr") if complete[_HOCR] else None,
    )


def clean_up(settings: Settings, job_id: str) -> None:
    """The runs and their outputs, once the document's own are stored."""
    try:
        storage.remove_prefix(settings, runs_prefix(settings, job_id))
    except PipelineError as e:
        log.warning("chunk.clean_up_failed", job_id=job_id, error=str(e))


def stalled(settings: Settings, cutoff: datetime, batch: int) -> list[tuple[str, int, str | None]]:
    """Chunks of unfinished jobs nothing touched since `cutoff`: (job id, chunk number, request id)."""
    with session_scope(settings) as session:
        rows = session.execute(
            select(JobChunk.job_id, JobChunk.number, Job.request_id).join(Job, Job.id == JobChunk.job_id)
            .where(Job.status == JobStatus.PROCESSING, JobChunk.status != DONE, JobChunk.updated_at < cutoff,
                   (JobChunk.lease_expires_at.is_(None)) | (JobChunk.lease_expires_at < cutoff))
            .limit(batch)).all()
        return [(job_id, number, request_id) for job_id, number, request_id in rows]
