"""The product on the real OpenFaaS: faasd 0.19.0, the CE gateway, its NATS queue-worker (one call at a time, no
retries), and stack.yml deployed with faas-cli; upload, bucket drop, chunks, re-process, delete, a worker killed
mid-job and what brings its job back, and the anonymous caller refused."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from common.adapters.db import Document, Job, JobChunk, session_scope
from common.adapters.storage import minio_client
from tests.openfaas.conftest import FUNCTIONS, JOB_LEASE_SECONDS, OCR_CHUNK_PAGES, Tier, _figure
from tests.support import Gateway, image_bytes, scanned_pdf, wait_until

# OCR goes through one queue-worker, one call at a time: the wait per job is the queue before it as well.
pytestmark = [pytest.mark.openfaas, pytest.mark.timeout(900)]


def _ctr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ctr", "--address", "/run/containerd/containerd.sock", "-n", "openfaas-fn", *args],
                          capture_output=True, text=True, check=False, timeout=60)


def _task(name: str) -> tuple[str, str]:
    """The pid and status containerd lists for a function's task (("", "") when it has none)."""
    for line in _ctr("task", "ls").stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == name:
            return fields[1], fields[2]
    return "", ""


def _job(tier: Tier, job_id: str) -> Job:
    with session_scope(tier.settings) as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def test_stack_yml_is_deployed_by_faas_cli_and_listed_by_the_ce_gateway(tier: Tier) -> None:
    """faas-cli list (the CE gateway's GET /system/functions, which needs Prometheus) names every function of
    stack.yml with one replica, and describe shows the image faasd runs."""
    listed = tier.faas_cli("list").stdout.decode()
    rows = {line.split()[0]: line.split() for line in listed.splitlines()[1:] if line.strip()}
    assert sorted(rows) == FUNCTIONS
    assert all(row[2] == "1" for row in rows.values()), listed
    described = tier.faas_cli("describe", "ocr-process").stdout.decode()
    assert "ocr-pipeline/ocr-process:latest" in described and "Ready" in described


def test_gateway_system_api_and_function_edge_refuse_anonymous_callers(tier: Tier) -> None:
    """Without credentials the CE gateway refuses /system/* (its basic auth), and the functions refuse an
    anonymous upload or listing with their own 401 and code."""
    anonymous = Gateway(tier.gateway_url)
    assert anonymous.request("GET", "/system/functions").status == 401
    for method, path in (("GET", "/function/list"), ("POST", "/function/upload")):
        reply = anonymous.request(method, path)
        assert reply.status == 401, (path, reply.body)
        assert reply.json()["error"]["code"] == "unauthenticated"


def test_upload_is_read_through_the_ce_queue_worker(tier: Tier) -> None:
    """An upload answers 202; its job reaches ocr-process over the gateway's NATS queue and completes."""
    admin = tier.admin()
    started = time.monotonic()
    reply = admin.upload(image_bytes(["FAASD upload invoice 4711"]), "upload.png")
    assert reply.status == 202, reply.body
    done = admin.wait_final(reply.json()["job_id"], timeout=180)
    assert done["status"] == "completed", done
    assert "4711" in done["text"] and "invoice" in done["text"].lower()
    _figure(f"upload to completed (one page): {time.monotonic() - started:.1f} s")


def test_bucket_drop_makes_its_own_job_from_minios_notification(tier: Tier) -> None:
    """A file put under inbox/<key id>/ with an S3 client becomes a document and a completed job, from MinIO's
    webhook through the CE gateway's /async-function alone."""
    admin = tier.admin()
    key = f"{tier.settings.inbox_prefix}{admin.key_id}/drop-{uuid.uuid4().hex[:8]}.png"
    data = image_bytes(["FAASD dropped receipt 5150"])
    minio_client(tier.settings).put_object(tier.settings.s3_bucket, key, io.BytesIO(data), len(data),
                                           content_type="image/png")

    def job_of_drop() -> str | None:
        with session_scope(tier.settings) as session:
            row = session.execute(select(Job.id).join(Document, Document.id == Job.document_id)
                                  .where(Document.object_key == key)).first()
            return row[0] if row else None

    job_id = wait_until(job_of_drop, 60, interval=0.5, what="the drop's notification to make a job")
    done = admin.wait_final(job_id, timeout=180)
    assert done["status"] == "completed" and done["source"] == "drop", done
    assert "5150" in done["text"]


def test_long_pdf_is_read_in_chunks_each_an_invocation_through_the_queue(tier: Tier) -> None:
    """A PDF longer than OCR_CHUNK_PAGES is read in chunks, each queued through gateway:8080 from inside a
    function, and assembled in page order."""
    admin = tier.admin()
    pages = [[f"FAASD chunk page {n} number {4000 + n}"] for n in range(1, 4)]
    started = time.monotonic()
    reply = admin.upload(scanned_pdf(pages), "chunked.pdf")
    assert reply.status == 202, reply.body
    job_id = reply.json()["job_id"]
    done = admin.wait_final(job_id, timeout=300)
    assert done["status"] == "completed", done
    assert (done["page_count"], done["pages_done"]) == (3, 3)
    positions = [done["text"].find(str(4000 + n)) for n in range(1, 4)]
    assert -1 not in positions and positions == sorted(positions), done["text"]
    with session_scope(tier.settings) as session:
        chunks = session.execute(select(JobChunk.first_page, JobChunk.last_page, JobChunk.status)
                                 .where(JobChunk.job_id == job_id).order_by(JobChunk.number)).all()
    assert [tuple(c) for c in chunks] == [(1, OCR_CHUNK_PAGES, "done"), (OCR_CHUNK_PAGES + 1, 3, "done")]
    _figure(f"3-page PDF in 2 chunks, upload to completed: {time.monotonic() - started:.1f} s")


def test_reprocess_then_delete_a_document(tier: Tier) -> None:
    """Re-process queues a new job through GATEWAY_URL (http://gateway:8080 on faasd) that completes; delete then
    removes the document, its jobs and its original."""
    admin = tier.admin()
    first = admin.wait_final(admin.upload(image_bytes(["FAASD again 8080"]), "again.png").json()["job_id"],
                             timeout=180)
    document = first["document_id"]
    reply = admin.request("POST", f"/function/documents/{document}/reprocess")
    assert reply.status == 202, reply.body
    again = admin.wait_final(reply.json()["job_id"], timeout=180)
    assert again["status"] == "completed" and again["job_id"] != first["job_id"] and "8080" in again["text"]

    with session_scope(tier.settings) as session:
        original = session.execute(select(Document.object_key).where(Document.id == document)).scalar_one()
    deleted = admin.request("DELETE", f"/function/documents/{document}")
    assert deleted.status in (200, 204), deleted.body
    assert admin.request("GET", f"/function/documents/{document}").status == 404
    assert admin.status(first["job_id"]).status == 404
    left = [o.object_name for o in minio_client(tier.settings).list_objects(tier.settings.s3_bucket, prefix=original)]
    assert left == []


def _sweep(tier: Tier) -> str:
    """One run of the scheduled retention job (`python -m common retention`), with SWEEP_AFTER_SECONDS=1 (the default
    is 600) so it takes the job as soon as its lease has run out."""
    swept = subprocess.run([sys.executable, "-m", "common", "retention"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, **tier.local_env, "SWEEP_AFTER_SECONDS": "1"}, check=False)
    assert swept.returncode == 0, swept.stderr
    return swept.stdout


def test_job_of_a_worker_killed_mid_job_is_brought_back_by_the_sweep(tier: Tier) -> None:
    """ocr-process killed while it reads: the CE queue-worker does not retry, so the job stays `processing` past its
    lease; the sweep of the retention run queues it again, and the gateway starts the function again on that call
    (scale from zero recreates the stopped task). That call can be lost too: faasd reports the new task ready before
    functions-framework listens, the watchdog answers 500 and nothing retries; the next sweep queues it again. Within
    three sweeps the job completes, with one more attempt than it had."""
    admin = tier.admin()
    pages = [[f"FAASD killed page {n} code {7000 + n}"] for n in range(1, OCR_CHUNK_PAGES + 1)]
    reply = admin.upload(scanned_pdf(pages), "killed.pdf")
    assert reply.status == 202, reply.body
    job_id = reply.json()["job_id"]
    wait_until(lambda: _job(tier, job_id).status == "processing", 120, interval=0.1, what="the job to be claimed")
    worker = _task("ocr-process")
    killed = _ctr("task", "kill", "--signal", "SIGKILL", "ocr-process")
    assert killed.returncode == 0, killed.stderr
    killed_at = time.monotonic()
    # Gone: stopped, or already a new task (the next queued call, MinIO's notification, makes the gateway start one).
    wait_until(lambda: _task("ocr-process") != worker, 30, what="ocr-process's killed task to go")

    # Nothing retries it: past the lease (renewed only while a worker lives) the job is still where the kill left it.
    time.sleep(JOB_LEASE_SECONDS + 3)
    stalled = _job(tier, job_id)
    assert stalled.status == "processing" and stalled.attempts == 1

    sweeps: list[float] = []
    done: dict[str, Any] | None = None
    while done is None and len(sweeps) < 3:
        assert "1 stalled jobs" in _sweep(tier)
        sweeps.append(time.monotonic())
        try:
            done = admin.wait_final(job_id, timeout=45)
        except AssertionError:
            assert _job(tier, job_id).status == "processing"  # the resubmitted call was lost: sweep again
    assert done is not None, "the job did not complete after three sweeps"
    assert done["status"] == "completed", done
    assert all(str(7000 + n) in done["text"] for n in range(1, OCR_CHUNK_PAGES + 1))
    assert _job(tier, job_id).attempts == 2
    _figure(f"killed worker: kill to first sweep {sweeps[0] - killed_at:.1f} s (lease {JOB_LEASE_SECONDS} s + the "
            f"test's margin); {len(sweeps)} sweep(s); last sweep to completed {time.monotonic() - sweeps[-1]:.1f} s")
