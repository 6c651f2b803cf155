"""The fenced lease on real MariaDB, for a job and for a chunk: a stale token is refused, an expired lease taken over."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import update

from common.adapters.db import Document, Job, JobChunk, session_scope, utcnow
from common.config import Settings
from common.errors import JobInProgress
from common.models import ChunkStatus, JobStatus, PageResult
from common.rules import chunks, jobs

pytestmark = pytest.mark.integration


def new_job(settings: Settings) -> str:
    with session_scope(settings) as session:
        document = Document(id=str(uuid.uuid4()), filename="lease.png", content_type="image/png", size_bytes=1,
                            bucket=settings.s3_bucket, object_key=f"lease/{uuid.uuid4()}", source="upload",
                            source_hash=uuid.uuid4().hex, created_at=utcnow())
        session.add(document)
        session.flush()
        job = jobs.create(session, document, "eng", 3, None, None)
        return job.id


def expire(settings: Settings, model: type[Job] | type[JobChunk], *where: object) -> None:
    with session_scope(settings) as session:
        session.execute(update(model).where(*where).values(lease_expires_at=utcnow() - timedelta(seconds=1)))


def test_a_jobs_lease_fences_a_stale_worker_and_is_taken_over_once_expired(settings: Settings) -> None:
    """Claimed: a second claim waits (Retry-After); renewed by its holder; expired: taken over with a new token,
    and the old holder can neither renew nor complete."""
    job_id = new_job(settings)
    first = jobs.claim(settings, job_id)
    assert first is not None
    with pytest.raises(JobInProgress) as waiting:
        jobs.claim(settings, job_id)
    assert 1 <= int(waiting.value.headers["Retry-After"]) <= settings.job_lease_seconds
    assert jobs.renew_lease(settings, first)
    expire(settings, Job, Job.id == job_id)
    second = jobs.claim(settings, job_id)
    assert second is not None and second.token != first.token
    assert not jobs.renew_lease(settings, first)
    assert not jobs.complete(settings, first)
    assert jobs.complete(settings, second)
    with session_scope(settings) as session:
        done = session.get(Job, job_id)
        assert done is not None and done.status == JobStatus.COMPLETED and done.claim_token is None


def test_a_chunks_lease_fences_a_stale_worker_the_same_way(settings: Settings) -> None:
    """A chunk claimed, refused to a second worker while live, taken over once expired; the old token is dead."""
    job_id = new_job(settings)
    with session_scope(settings) as session:
        session.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.PROCESSING))
        session.add(JobChunk(job_id=job_id, number=0, first_page=1, last_page=2, status=ChunkStatus.PENDING,
                             attempts=0, updated_at=utcnow()))
    first = chunks.claim(settings, job_id, 0)
    assert first is not None
    with pytest.raises(JobInProgress):
        chunks.claim(settings, job_id, 0)
    assert chunks.renew(settings, first)
    expire(settings, JobChunk, JobChunk.job_id == job_id)
    second = chunks.claim(settings, job_id, 0)
    assert second is not None and second.token != first.token
    assert not chunks.renew(settings, first)
    assert not chunks.renew(settings, replace(second, token="not-a-token"))
    assert chunks.finish(settings, first) is None
    assembly = chunks.finish(settings, second)
    assert assembly is not None and assembly.job_id == job_id


def test_progress_never_goes_back_when_a_job_is_taken_over(settings: Settings) -> None:
    """Two pages stored, the worker lost: the take-over keeps pages_done at 2, a page read again is not counted
    twice, and a new page moves it to 3."""
    def page(number: int) -> PageResult:
        return PageResult(number=number, text=f"page {number}", confidence=90.0, method="ocr", width=10, height=10,
                          duration_ms=5)

    def done() -> int:
        with session_scope(settings) as session:
            job = session.get(Job, job_id)
            assert job is not None
            return job.pages_done

    job_id = new_job(settings)
    first = jobs.claim(settings, job_id)
    assert first is not None
    assert jobs.record_page(settings, first, page(1)) and jobs.record_page(settings, first, page(2))
    expire(settings, Job, Job.id == job_id)
    second = jobs.claim(settings, job_id)
    assert second is not None and done() == 2
    assert jobs.record_page(settings, second, page(1)) and done() == 2
    assert jobs.record_page(settings, second, page(3)) and done() == 3
