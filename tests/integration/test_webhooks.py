"""Signed completion webhooks on the real stack: a receiver on 127.0.0.1 (allowed by CALLBACK_ALLOWED_HOSTS in the
local stack), delivery recorded in status, retries with backoff, and URLs refused at upload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from common.config import Settings
from common.rules import apikeys
from ocr_pipeline_client import BadRequest, Client
from ocr_pipeline_client.webhooks import SIGNATURE_HEADER, verify
from tests.support import Posted, image_bytes, scanned_pdf, scripted_server, wait_until

pytestmark = pytest.mark.integration


@contextmanager
def receiver(answers: list[int]) -> Iterator[tuple[str, list[Posted]]]:
    """A webhook receiver answering its POSTs with `answers` in turn (the last one from then on); yields the
    URL to give as callback_url and what it got."""
    with scripted_server([(status, {}, b"") for status in answers]) as (base, got):
        yield f"{base}/hooks/ocr?source=test", got


@pytest.fixture
def api_key(settings: Settings) -> str:
    return apikeys.create(settings, f"hooks-{uuid.uuid4().hex[:8]}").token


@pytest.fixture
def client(stack: Any, api_key: str) -> Client:
    return Client(stack.gateway_url, api_key)


def _settled(client: Client, job_id: str) -> Any:
    def check() -> Any:
        current = client.status(job_id)
        return current if current.callback and current.callback.state != "pending" else None

    return wait_until(check, 120, what=f"job {job_id}'s callback to settle")


def test_completed_job_is_called_back_once_with_a_signature_the_receiver_verifies(client: Client,
                                                                                    api_key: str) -> None:
    """One POST per job: a job.completed event signed with the key's secret, links and no text; status shows
    the delivery."""
    with receiver([204]) as (url, got):
        accepted = client.upload(image_bytes(["WEBHOOK delivered"]), filename="hook.png", callback_url=url)
        done = _settled(client, accepted.job_id)
        time.sleep(1.5)  # nothing more follows a 2xx
    assert done.status == "completed"
    assert done.callback is not None and (done.callback.state, done.callback.attempts, done.callback.last_code) == (
        "delivered", 1, 204)
    [posted] = got
    headers, body = posted.headers, posted.body
    event = verify(api_key, headers[SIGNATURE_HEADER], body)
    assert event["type"] == "job.completed" and headers["X-OCR-Event"] == "job.completed"
    assert event["data"]["job_id"] == accepted.job_id and event["data"]["document_id"] == accepted.document_id
    assert event["data"]["status"] == "completed" and event["data"]["error"] is None
    assert event["data"]["links"]["status"].endswith(f"/function/status/{accepted.job_id}")
    assert b"webhook" not in body.lower() and "text" not in event["data"]  # the recognised text is never sent
    assert headers["Host"] == url.split("/")[2]
    with pytest.raises(Exception, match="does not match"):
        verify("ocr_000000000000_" + "y" * 43, headers[SIGNATURE_HEADER], body)
    shown = subprocess.run([sys.executable, "-m", "ocr_pipeline_client", "status", accepted.job_id],
                           capture_output=True, text=True, timeout=60, env={**os.environ, "OCR_URL": client.url, "OCR_API_KEY": api_key})
    assert "callback  delivered, 1 attempt(s), last 204" in shown.stdout, shown.stderr


def test_receiver_failing_twice_then_succeeding_gets_three_attempts_with_backoff(client: Client,
                                                                                  api_key: str) -> None:
    """500, 503, then 200: three signed attempts of the same event, spaced by a growing backoff."""
    with receiver([500, 503, 200]) as (url, got):
        accepted = client.upload(image_bytes(["RETRY me"]), filename="retry.png", callback_url=url)
        done = _settled(client, accepted.job_id)
    assert done.callback is not None and (done.callback.state, done.callback.attempts, done.callback.last_code) == (
        "delivered", 3, 200)
    assert len(got) == 3
    events = [verify(api_key, p.headers[SIGNATURE_HEADER], p.body) for p in got]
    assert len({e["id"] for e in events}) == 1  # the same event, retried
    gaps = [got[i + 1].at - got[i].at for i in range(2)]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.8 and gaps[1] > gaps[0], gaps


def test_failed_job_event_carries_its_error_code(client: Client, api_key: str) -> None:
    with receiver([200]) as (url, got):
        accepted = client.upload(b"%PDF-1.7\n" + b"\x00garbage" * 200, filename="broken.pdf", callback_url=url)
        done = _settled(client, accepted.job_id)
    assert done.status == "failed" and done.callback is not None and done.callback.state == "delivered"
    [posted] = got
    headers, body = posted.headers, posted.body
    event = verify(api_key, headers[SIGNATURE_HEADER], body)
    assert event["type"] == "job.failed" and event["data"]["error"]["code"] == "corrupt_document"


def test_job_deleted_before_delivery_sends_nothing(client: Client) -> None:
    """A document deleted while its job runs is never called back."""
    with receiver([200]) as (url, got):
        accepted = client.upload(scanned_pdf([[f"PAGE {n} to delete"] for n in range(1, 5)]), filename="gone.pdf",
                                 callback_url=url)
        client.delete(accepted.document_id)
        time.sleep(8)  # longer than the four pages would take to OCR and call back
    assert got == []


@pytest.mark.parametrize(("url", "rule"), [
    ("ftp://example.com/hook", "must be an http:// or https:// URL"),
    ("http://user:pw@example.com/hook", "must not carry credentials"),
    ("http://169.254.169.254/latest/meta-data", "private, loopback or link-local"),
    ("http://10.1.2.3:8080/hook", "private, loopback or link-local"),
])
def test_a_refused_callback_url_is_a_400_naming_the_rule(client: Client, url: str, rule: str) -> None:
    """Refused at upload, before anything is stored: 400 callback_refused with the rule in the message."""
    with pytest.raises(BadRequest) as refused:
        client.upload(image_bytes(["NEVER stored"]), filename="refused.png", callback_url=url)
    assert refused.value.code == "callback_refused" and rule in refused.value.message
    assert [d.filename for d in client.iter_documents()] == []


def test_the_command_line_passes_the_callback_url(client: Client, api_key: str, tmp_path: Any) -> None:
    """`ocr upload --callback-url URL --wait`: the job is called back, and `ocr status` shows the delivery."""
    scan = tmp_path / "cli.png"
    scan.write_bytes(image_bytes(["FROM the command line"]))
    env = {**os.environ, "OCR_URL": client.url, "OCR_API_KEY": api_key}
    with receiver([200]) as (url, got):
        run = subprocess.run([sys.executable, "-m", "ocr_pipeline_client", "upload", str(scan), "--callback-url", url,
                              "--wait", "--json"], capture_output=True, text=True, timeout=180, env=env)
        assert run.returncode == 0, run.stderr
        [job] = json.loads(run.stdout)
        done = _settled(client, job["job_id"])
    assert done.callback is not None and done.callback.state == "delivered"
    [posted] = got
    headers, body = posted.headers, posted.body
    assert verify(api_key, headers[SIGNATURE_HEADER], body)["data"]["job_id"] == job["job_id"]
