"""End to end on real services: upload or bucket drop -> notification -> ocr-process -> MySQL -> status/list."""

from __future__ import annotations

import io
import json
import re
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from sqlalchemy import func, select

from common.adapters.db import Document, Job, Page, session_scope
from common.config import Settings
from tests.support import Gateway, image_bytes, scanned_pdf, wait_until

pytestmark = pytest.mark.integration


def _words(text: str) -> str:
    return " ".join(text.split()).lower()


def _job_of_key(settings: Settings, key: str) -> str | None:
    with session_scope(settings) as session:
        return session.execute(
            select(Job.id).join(Document, Document.job_id == Job.id).where(Document.object_key == key)
        ).scalar_one_or_none()


def test_uploaded_image_is_recognised(gateway: Gateway) -> None:
    """An image posted to upload answers 202 with a job that completes with the image's words."""
    reply = gateway.upload(image_bytes(["INVOICE 4711 paid in full"]), "scan.png")
    assert reply.status == 202, reply.body
    accepted = reply.json()
    assert accepted["status"] == "pending"
    assert set(accepted) == {"job_id", "document_id", "status", "status_url"}
    assert accepted["status_url"].endswith(f"/function/status/{accepted['job_id']}")

    done = gateway.wait_final(accepted["job_id"])
    assert done["status"] == "completed", done
    assert "invoice 4711 paid in full" in _words(done["text"])
    assert done["page_count"] == 1 and done["pages_done"] == 1
    assert done["content_type"] == "image/png"
    assert done["error"] is None
    plain = gateway.status(accepted["job_id"], "?format=text")
    assert plain.status == 200 and plain.headers["Content-Type"].startswith("text/plain")
    assert plain.body.decode() == done["text"]


def test_raw_body_upload_with_filename_parameter(gateway: Gateway) -> None:
    """A raw body with ?filename= is accepted like a form upload, and its type comes from the bytes."""
    reply = gateway.request(
        "POST", "/function/upload?filename=receipt.jpg", body=image_bytes(["RECEIPT coffee 3 euro"], "JPEG"),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert reply.status == 202, reply.body
    done = gateway.wait_final(reply.json()["job_id"])
    assert done["status"] == "completed"
    assert done["filename"] == "receipt.jpg" and done["content_type"] == "image/jpeg"
    assert "receipt coffee" in _words(done["text"])


def test_scanned_pdf_pages_come_back_in_order(gateway: Gateway) -> None:
    """A three-page scanned PDF yields three pages of text, in page order."""
    words = ["FIRST page apple", "SECOND page banana", "THIRD page cherry"]
    reply = gateway.upload(scanned_pdf([[w] for w in words]), "three pages.pdf")
    assert reply.status == 202, reply.body
    job_id = reply.json()["job_id"]
    done = gateway.wait_final(job_id)
    assert done["status"] == "completed", done
    assert done["page_count"] == 3
    pages = gateway.status(job_id, "?include=pages").json()["pages"]
    assert [p["page"] for p in pages] == [1, 2, 3]
    for page, expected in zip(pages, words):
        assert expected.lower() in _words(page["text"])
        assert page["method"] == "ocr" and page["confidence"] > 50
    text = _words(done["text"])
    assert text.index("apple") < text.index("banana") < text.index("cherry")
    # With include=words each page carries its words, boxed inside the page's raster.
    detailed = gateway.status(job_id, "?include=words").json()["pages"]
    apple = next(w for w in detailed[0]["words"] if w["text"].lower() == "apple")
    assert apple["confidence"] > 50
    assert 0 <= apple["left"] < apple["left"] + apple["width"] <= detailed[0]["width"]
    assert 0 <= apple["top"] < apple["top"] + apple["height"] <= detailed[0]["height"]
    assert "words" not in pages[0]
    refused = gateway.status(job_id, "?include=boxes")
    assert refused.status == 400 and refused.json()["error"]["code"] == "bad_request"


def test_completed_job_links_a_searchable_pdf_and_hocr(gateway: Gateway, tmp_path: Path) -> None:
    """A completed job's status links one searchable PDF and one hOCR file covering every page."""
    reply = gateway.upload(scanned_pdf([["LINKED page one"], ["LINKED page two"]]), "linked.pdf")
    done = gateway.wait_final(reply.json()["job_id"])
    assert set(done["outputs"]) == {"searchable_pdf", "hocr"}

    pdf = gateway.follow_link(done["outputs"]["searchable_pdf"])
    assert pdf.status == 200 and pdf.data.startswith(b"%PDF-")
    (tmp_path / "out.pdf").write_bytes(pdf.data)
    info = subprocess.run(["pdfinfo", str(tmp_path / "out.pdf")], capture_output=True, text=True, check=True)
    assert re.search(r"^Pages:\s+2$", info.stdout, re.M)
    layer = subprocess.run(["pdftotext", str(tmp_path / "out.pdf"), "-"], capture_output=True, text=True,
                           check=True).stdout.lower()
    assert "linked page one" in layer and "linked page two" in layer

    hocr = gateway.follow_link(done["outputs"]["hocr"])
    assert hocr.status == 200 and hocr.data.count(b"class='ocr_page'") == 2


def test_dropped_object_is_ingested_and_processed(gateway: Gateway, s3: Any, settings: Settings) -> None:
    """A file put under the inbox prefix by an S3 client gets a document and a job from the notification alone."""
    key = f"{settings.inbox_prefix}{gateway.key_id}/drop {uuid.uuid4().hex[:8]} büro+notes.png"
    data = image_bytes(["DROPPED into the bucket"])
    s3.put_object(settings.s3_bucket, key, io.BytesIO(data), len(data), content_type="image/png")

    job_id = wait_until(lambda: _job_of_key(settings, key), 60, what="the drop to be registered")
    done = gateway.wait_final(job_id)
    assert done["status"] == "completed", done
    assert done["source"] == "drop"
    assert done["filename"] == key.rsplit("/", 1)[-1]
    assert "dropped into the bucket" in _words(done["text"])


def _minio_event(bucket: str, key: str, size: int, etag: str) -> bytes:
    """The body MinIO's webhook target posts for one created object (key query-escaped, as MinIO does)."""
    record = {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "eventName": "s3:ObjectCreated:Put",
        "s3": {
            "bucket": {"name": bucket},
            "object": {"key": quote_plus(key), "size": size, "eTag": etag, "contentType": "image/png",
                       "userMetadata": {"content-type": "image/png"}, "sequencer": "17A1"},
        },
    }
    return json.dumps({"EventName": "s3:ObjectCreated:Put", "Key": f"{bucket}/{key}", "Records": [record]}).encode()


@pytest.mark.parametrize(("data", "code"), [(b"", "empty_file"), (b"plain text, not a scan\n", "unsupported_media_type")])
def test_bad_dropped_object_fails_its_job_with_a_code(gateway: Gateway, s3: Any, settings: Settings, data: bytes,
                                                      code: str) -> None:
    """An empty or non-document object dropped in the inbox gets a failed job with a code, not a retry loop."""
    key = f"{settings.inbox_prefix}{gateway.key_id}/bad-{uuid.uuid4().hex[:8]}.pdf"
    s3.put_object(settings.s3_bucket, key, io.BytesIO(data), len(data))
    job_id = wait_until(lambda: _job_of_key(settings, key), 60, what="the drop to be registered")
    failed = gateway.wait_final(job_id)
    assert failed["status"] == "failed" and failed["error"]["code"] == code


def test_duplicate_concurrent_notifications_yield_one_result(admin: Gateway, s3: Any, settings: Settings,
                                                             internal: dict[str, str]) -> None:
    """The same notification delivered twice at once, then once more, gives one document, one job, one page set."""
    # Outside the notified prefixes, so the only deliveries are the ones this test makes.
    key = f"manual/{uuid.uuid4().hex} twice.png"
    data = image_bytes(["DUPLICATE delivery check"])
    etag = s3.put_object(settings.s3_bucket, key, io.BytesIO(data), len(data)).etag
    event = _minio_event(settings.s3_bucket, key, len(data), etag)

    def deliver(_: int) -> tuple[int, Any]:
        reply = admin.request("POST", "/function/ocr-process", body=event, headers=internal)
        return reply.status, reply.json()

    with ThreadPoolExecutor(max_workers=2) as pool:
        replies = list(pool.map(deliver, range(2)))
    statuses = sorted(status for status, _ in replies)
    # The loser either finds the job done (200, duplicate) or still leased (409, retried by the queue).
    assert statuses in ([200, 200], [200, 409]), replies
    results = [o["result"] for status, body in replies if status == 200 for o in body["outcomes"]]
    assert results.count("completed") == 1

    again = admin.request("POST", "/function/ocr-process", body=event, headers=internal)
    assert again.status == 200 and again.json()["outcomes"][0]["result"] == "duplicate"

    with session_scope(settings) as session:
        documents = session.execute(select(func.count()).select_from(Document).where(Document.object_key == key))
        assert documents.scalar_one() == 1
        job_id = _job_of_key(settings, key)
        pages = session.execute(select(func.count()).select_from(Page).where(Page.job_id == job_id)).scalar_one()
        assert pages == 1
    # Outside every key's inbox folder: the drop belongs to INBOX_OWNER, the stack's admin key.
    done = admin.wait_final(str(job_id))
    assert done["status"] == "completed" and done["owner_id"] == settings.inbox_owner


def test_drop_while_gateway_is_down_completes_after_restart(gateway: Gateway, stack: Any, s3: Any,
                                                            settings: Settings) -> None:
    """MinIO keeps a notification in its queue dir while the gateway is down and delivers it after restart."""
    key = f"{settings.inbox_prefix}{gateway.key_id}/outage-{uuid.uuid4().hex[:8]}.png"
    data = image_bytes(["QUEUED during outage"])
    stack.stop_gateway()
    try:
        s3.put_object(settings.s3_bucket, key, io.BytesIO(data), len(data), content_type="image/png")
    finally:
        stack.start_gateway()
    job_id = wait_until(lambda: _job_of_key(settings, key), 90, what="the queued notification to arrive")
    assert gateway.wait_final(job_id)["status"] == "completed"


def test_accepted_invocation_survives_gateway_restart(gateway: Gateway, stack: Any, s3: Any,
                                                      settings: Settings, system: Gateway) -> None:
    """A notification the gateway accepted but had not processed is processed after the gateway restarts."""
    stack.stop_gateway()
    stack.start_gateway(queue_workers=0)
    try:
        key = f"{settings.inbox_prefix}{gateway.key_id}/restart-{uuid.uuid4().hex[:8]}.png"
        data = image_bytes(["SURVIVES a restart"])
        s3.put_object(settings.s3_bucket, key, io.BytesIO(data), len(data), content_type="image/png")
        queue = wait_until(
            lambda: (lambda q: q if q["queued"] >= 1 else None)(
                system.request("GET", "/system/queue").json()),
            30, what="the event to be queued")
        assert queue
        assert _job_of_key(settings, key) is None  # accepted, not yet processed
    finally:
        stack.stop_gateway()
        stack.start_gateway()
    job_id = wait_until(lambda: _job_of_key(settings, key), 60, what="the queued event to be processed")
    assert gateway.wait_final(job_id)["status"] == "completed"


def test_unknown_job_is_404_json(gateway: Gateway) -> None:
    """Status of a job id that does not exist is a 404 with a JSON error code."""
    reply = gateway.status(str(uuid.uuid4()))
    assert reply.status == 404
    assert reply.json()["error"]["code"] == "job_not_found"
    assert gateway.status("not-a-uuid").json()["error"]["code"] == "job_not_found"


@pytest.mark.parametrize(
    ("payload", "filename", "status", "code"),
    [
        (b"just some words, not an image\n", "notes.png", 415, "unsupported_media_type"),
        (b"", "empty.pdf", 400, "empty_file"),
    ],
)
def test_bad_upload_is_refused_with_a_code(gateway: Gateway, payload: bytes, filename: str, status: int,
                                           code: str) -> None:
    """A renamed text file or an empty file is refused with a JSON error naming what is wrong."""
    reply = gateway.upload(payload, filename)
    assert reply.status == status, reply.body
    error = reply.json()["error"]
    assert error["code"] == code and error["message"]


def test_upload_without_file_field_is_400(gateway: Gateway) -> None:
    """A multipart form without the `file` field names the field it expected."""
    reply = gateway.request("POST", "/function/upload", fields={"document": ("a.png", b"x", "image/png")})
    assert reply.status == 400
    assert reply.json()["error"]["code"] == "missing_file"
    assert "'file'" in reply.json()["error"]["message"]


def test_unknown_language_is_400_listing_installed(gateway: Gateway) -> None:
    """An OCR language that is not installed is refused, and the error lists the installed ones."""
    reply = gateway.upload(image_bytes(["hello"]), "a.png", lang="xxx")
    assert reply.status == 400
    error = reply.json()["error"]
    assert error["code"] == "invalid_language" and "eng" in error["message"]


def test_corrupt_pdf_fails_with_a_code_and_next_job_succeeds(gateway: Gateway) -> None:
    """A PDF that cannot be read fails its job with a code; the worker takes the next job normally."""
    broken = gateway.upload(b"%PDF-1.7\n" + b"\x00garbage" * 200, "broken.pdf")
    assert broken.status == 202
    failed = gateway.wait_final(broken.json()["job_id"])
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "corrupt_document" and failed["error"]["message"]
    no_text = gateway.status(broken.json()["job_id"], "?format=text")
    assert no_text.status == 409 and no_text.json()["error"]["code"] == "job_not_completed"

    ok = gateway.upload(image_bytes(["NEXT job works"]), "next.png")
    assert gateway.wait_final(ok.json()["job_id"])["status"] == "completed"


def test_list_is_newest_first_and_paginates(gateway: Gateway) -> None:
    """list returns documents newest first; limit and offset page through them without overlap."""
    ids = [gateway.upload(image_bytes([f"LIST item {i}"]), f"list-{i}.png").json()["document_id"] for i in range(3)]
    first = gateway.request("GET", "/function/list?limit=2").json()
    second = gateway.request("GET", "/function/list?limit=2&offset=2").json()
    assert first["limit"] == 2 and first["offset"] == 0 and first["total"] >= 3
    assert [item["document_id"] for item in first["items"]] == ids[::-1][:2]
    assert second["items"][0]["document_id"] == ids[0]
    bad = gateway.request("GET", "/function/list?limit=1000")
    assert bad.status == 400 and "limit" in bad.json()["error"]["message"]


def test_request_id_reaches_ocr_process_logs(gateway: Gateway, stack: Any) -> None:
    """The upload's request id and job id appear on ocr-process's log lines for that document."""
    request_id = f"req-{uuid.uuid4().hex}"
    reply = gateway.upload(image_bytes(["TRACE me"]), "trace.png", headers={"X-Request-Id": request_id})
    job_id = reply.json()["job_id"]
    assert reply.headers["X-Request-Id"] == request_id
    gateway.wait_final(job_id)

    def traced() -> list[dict[str, Any]]:
        lines = []
        for log_file in Path(stack.state_dir).rglob("ocr-process*.log"):
            for line in log_file.read_text(errors="replace").splitlines():
                if request_id in line and line.startswith("{"):
                    lines.append(json.loads(line))
        return lines

    lines = wait_until(traced, 10, what="ocr-process log lines with the request id")
    assert all(entry["service"] == "ocr-process" for entry in lines)
    assert any(entry.get("job_id") == job_id and entry["event"] == "job.status_changed" for entry in lines)
