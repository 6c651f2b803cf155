"""Jobs nothing runs any more are settled by the sweep; a drop cannot borrow another job through its metadata."""

from __future__ import annotations

import dataclasses
import io
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from common.adapters.db import Document, Job, session_scope, utcnow
from common.config import Settings
from common.models import JobStatus
from common.rules import jobs, sweep
from common.rules.events import JOB_ID_KEY
from tests.support import Gateway, image_bytes, receiver, wait_until

pytestmark = pytest.mark.integration


def stalled_job(settings: Settings, key: str, source: str, etag: str | None, owner_id: str | None) -> tuple[str, str]:
    """Rows of a document and its pending job, last touched 20 minutes ago, as a killed process leaves them."""
    document_id = jobs.new_id()
    long_ago = utcnow() - timedelta(minutes=20)
    with session_scope(settings) as session:
        document = Document(id=document_id, filename="stalled.png", content_type="image/png", size_bytes=10,
                            bucket=settings.s3_bucket, object_key=key, etag=etag, source=source,
                            source_hash=uuid.uuid4().hex, created_at=long_ago, owner_id=owner_id)
        session.add(document)
        session.flush()
        job = jobs.create(session, document, "eng", 3, "req-" + document_id[:8], owner_id)
        job.created_at = job.updated_at = long_ago
        job_id = job.id
        jobs.show(session, document_id, job_id)
    return document_id, job_id


def job_of(settings: Settings, job_id: str) -> Job | None:
    with session_scope(settings) as session:
        job = session.get(Job, job_id)
        if job is not None:
            session.expunge(job)
        return job


def test_the_sweep_settles_each_kind_of_stalled_job(settings: Settings, s3: Any, gateway: Gateway) -> None:
    owner = gateway.key_id
    # 1. An upload killed between its rows and its object: no object, no ETag.
    unstored_doc, unstored_job = stalled_job(settings, f"uploads/{uuid.uuid4().hex}/lost.png", "upload", None, owner)
    # 2. A drop whose object was removed before any worker read it.
    gone_doc, gone_job = stalled_job(settings, f"inbox/{uuid.uuid4().hex}-gone.png", "drop", "abc", owner)
    # 3. A job with its object whose every delivery was lost.
    key = f"swept/{uuid.uuid4().hex}-kept.png"  # outside the notified prefixes: only the sweep can start it
    data = image_bytes(["SWEPT back into the queue"])
    kept_doc, kept_job = stalled_job(settings, key, "drop", "def", owner)
    s3.put_object(settings.s3_bucket, key, io.BytesIO(data), len(data), content_type="image/png")
    # 4. A job touched a minute ago is left alone, object or not.
    fresh_doc, fresh_job = stalled_job(settings, f"uploads/{uuid.uuid4().hex}/young.png", "upload", None, owner)
    with session_scope(settings) as session:
        fresh = session.get(Job, fresh_job)
        assert fresh is not None
        fresh.updated_at = utcnow() - timedelta(minutes=1)

    report = sweep.sweep(dataclasses.replace(settings, sweep_after_seconds=600))

    assert report.withdrawn >= 1 and report.failed >= 1 and report.resubmitted >= 1
    with session_scope(settings) as session:
        assert session.get(Document, unstored_doc) is None and session.get(Job, unstored_job) is None
    gone = job_of(settings, gone_job)
    assert gone is not None and gone.status.value == "failed" and gone.error_code == "object_missing"
    fresh_after = job_of(settings, fresh_job)
    assert fresh_after is not None and fresh_after.status.value == "pending"
    final = gateway.wait_final(kept_job)
    assert final["status"] == "completed" and "SWEPT" in final["text"], final


def test_a_job_id_in_a_drops_metadata_is_not_honoured_outside_uploads(gateway: Gateway, s3: Any,
                                                                      settings: Settings) -> None:
    """A file dropped into the inbox naming someone's job in its metadata gets a job of its own."""
    victim = gateway.upload(image_bytes(["VICTIM page"]), "victim.png")
    assert victim.status == 202
    victim_job = victim.json()["job_id"]
    gateway.wait_final(victim_job)
    key = f"inbox/{gateway.key_id}/{uuid.uuid4().hex}-borrow.png"
    data = image_bytes(["BORROWER page"])
    s3.put_object(settings.s3_bucket, key, io.BytesIO(data), len(data), content_type="image/png",
                  metadata={JOB_ID_KEY: victim_job})

    def own_job() -> str | None:
        with session_scope(settings) as session:
            return session.execute(select(Document.job_id).where(Document.object_key == key)).scalar_one_or_none()

    job_id = wait_until(own_job, 60, what="the drop's own document")
    assert job_id != victim_job
    assert "BORROWER" in gateway.wait_final(job_id)["text"]
    victim_after = gateway.status(victim_job).json()
    assert "VICTIM" in victim_after["text"] and "BORROWER" not in victim_after["text"]


def test_the_sweep_sends_a_webhook_a_dead_worker_left_owed(settings: Settings, gateway: Gateway) -> None:
    """A job finished long ago whose callback is still `pending` (its worker died while delivering) is called
    back by the sweep, signed like any delivery, and its state recorded."""
    _doc, job_id = stalled_job(settings, f"swept/{uuid.uuid4().hex}-owed.png", "drop", "abc", gateway.key_id)
    with receiver(200) as (url, received):
        with session_scope(settings) as session:
            job = session.get(Job, job_id)
            assert job is not None
            job.status = JobStatus.COMPLETED
            job.text = "owed"
            job.finished_at = utcnow() - timedelta(minutes=20)
            job.callback_url, job.callback_state, job.callback_attempts = f"{url}/hook", "pending", 1
        report = sweep.sweep(settings)
        assert report.called_back >= 1
        [posted] = [p for p in received if json.loads(p.body)["data"]["job_id"] == job_id]
    assert posted.path == "/hook" and "X-OCR-Signature" in posted.headers
    after = job_of(settings, job_id)
    assert after is not None and (after.callback_state, after.callback_attempts) == ("delivered", 2)


def test_the_sweep_queues_again_a_chunk_whose_invocation_was_lost(settings: Settings, s3: Any,
                                                                  gateway: Gateway) -> None:
    """A fanned-out job's chunk that nothing ran (its invocation lost) is queued again; the job completes."""
    from common.adapters.db import JobChunk
    from common.rules.chunks import runs_prefix
    from tests.support import scanned_pdf

    _doc, job_id = stalled_job(settings, f"swept/{uuid.uuid4().hex}-chunked.pdf", "drop", "abc", gateway.key_id)
    run = scanned_pdf([["LOST chunk page one"], ["LOST chunk page two"]])
    s3.put_object(settings.s3_bucket, f"{runs_prefix(settings, job_id)}00000.pdf", io.BytesIO(run), len(run),
                  content_type="application/pdf")
    long_ago = utcnow() - timedelta(minutes=20)
    with session_scope(settings) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.status, job.page_count, job.lease_expires_at, job.claim_token = JobStatus.PROCESSING, 2, None, None
        session.add(JobChunk(job_id=job_id, number=0, first_page=1, last_page=2, status="pending", attempts=0,
                             updated_at=long_ago))

    report = sweep.sweep(settings)

    assert report.chunks_resubmitted >= 1
    final = gateway.wait_final(job_id)
    assert final["status"] == "completed" and final["pages_done"] == 2 and "LOST chunk" in final["text"], final
