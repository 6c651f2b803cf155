"""Logs an operator can follow: every line of the stack's logs is a JSON record, and one request id follows a
document from the gateway through upload, the queue and ocr-process to its webhook."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pytest

from common.config import Settings
from tests.integration.test_pipeline import _job_of_key
from tests.support import Gateway, image_bytes, log_lines, not_json_records, scripted_server, wait_until

pytestmark = pytest.mark.integration


def test_every_log_line_of_an_upload_and_a_failure_is_a_json_record(stack: Any, gateway: Gateway, s3: Any,
                                                                   settings: Settings) -> None:
    """After a completed upload and a failed drop, every line of the gateway's, functions', retention's and
    MinIO's logs parses as one JSON object."""
    assert gateway.wait_final(gateway.upload(image_bytes(["LOGS line"]), "logs.png").json()["job_id"])
    key = f"{settings.inbox_prefix}{gateway.key_id}/bad-{uuid.uuid4().hex[:8]}.pdf"
    s3.put_object(settings.s3_bucket, key, io.BytesIO(b"not a document\n"), 15)
    assert gateway.wait_final(wait_until(lambda: _job_of_key(settings, key), 60, what="the drop"))["status"] == "failed"
    assert sum(1 for _ in log_lines(stack.state_dir)) > 20
    assert not_json_records(stack.state_dir) == []


def test_one_request_id_follows_a_document_from_the_gateway_to_its_webhook(stack: Any, gateway: Gateway) -> None:
    """The client's X-Request-Id is on the gateway's lines, upload's, the queue's, ocr-process's and the
    webhook's lines, and on the webhook POST itself."""
    request_id = f"trail-{uuid.uuid4().hex}"
    with scripted_server([(204, {}, b"")]) as (base, got):
        reply = gateway.upload(image_bytes(["TRAIL of one id"]), "trail.png", headers={"X-Request-Id": request_id},
                               callback_url=f"{base}/hook")
        assert reply.status == 202, reply.body
        assert gateway.wait_final(reply.json()["job_id"])["status"] == "completed"
        posted = wait_until(lambda: got[0] if got else None, 60, what="the webhook")
    assert posted.headers["X-Request-Id"] == request_id

    def trail() -> dict[str, set[str]] | None:
        seen: dict[str, set[str]] = {}
        for _path, line in log_lines(stack.state_dir):
            if request_id in line:
                record = json.loads(line)
                seen.setdefault(record.get("service", "?"), set()).add(record["event"])
        wanted = {"gateway": {"http.request", "queue.enqueued"}, "upload": {"job.created"},
                  "ocr-process": {"job.status_changed", "callback.attempt"}}
        return seen if all(events <= seen.get(service, set()) for service, events in wanted.items()) else None
    wait_until(trail, 20, what=f"lines of every part carrying {request_id}")
