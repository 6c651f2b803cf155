"""What a client or a sender controls is refused cleanly: 4xx naming the limit, no rows left, no internals shown."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote_plus

import pytest
from sqlalchemy import func, select

from common.adapters.db import Document, Job, session_scope
from common.config import Settings
from common.rules.events import MAX_EVENT_RECORDS
from tests.support import Gateway, image_bytes, render_page

pytestmark = pytest.mark.integration


def _documents_of(settings: Settings, owner_id: str | None) -> int:
    with session_scope(settings) as session:
        return int(session.execute(
            select(func.count()).select_from(Document).where(Document.owner_id == owner_id)).scalar_one())


def _jobs_of(settings: Settings, owner_id: str | None) -> int:
    with session_scope(settings) as session:
        return int(session.execute(
            select(func.count()).select_from(Job).where(Job.owner_id == owner_id)).scalar_one())


def _documents_at(settings: Settings, key: str) -> int:
    with session_scope(settings) as session:
        return int(session.execute(
            select(func.count()).select_from(Document).where(Document.object_key == key)).scalar_one())


def _assert_clean(error: dict[str, Any], stack: Any, request_id: str) -> None:
    """A 5xx body: a code, a plain message and the request id; no host, port, library or object key."""
    assert error["request_id"] == request_id
    for internal in ("HTTPConnectionPool", "127.0.0.1", str(stack.ports.minio), str(stack.ports.mysql),
                     "uploads/", "pymysql", "urllib3", "Errno", "("):
        assert internal not in error["message"], error


@contextmanager
def _stopped(service: Any) -> Iterator[None]:
    """A backing service of the stack down for the block, up again after (whatever the block did)."""
    service.stop()
    try:
        yield
    finally:
        service.start()


def _listed(gateway: Gateway) -> int:
    reply = gateway.request("GET", "/function/list?limit=100")
    assert reply.status == 200, reply.body
    return int(reply.json()["total"])


# --- (7) a refused upload leaves nothing; (11) its body shows nothing internal --------------------------


def test_upload_during_a_storage_outage_leaves_nothing_and_says_nothing_internal(
        gateway: Gateway, stack: Any, settings: Settings) -> None:
    """MinIO down: 503 storage_unavailable with a plain message and the request id; no row, no listing entry."""
    request_id = f"req-{uuid.uuid4().hex}"
    with _stopped(stack.minio):
        reply = gateway.upload(image_bytes(["NEVER stored"]), "outage.png", headers={"X-Request-Id": request_id})
    assert reply.status == 503, reply.body
    error = reply.json()["error"]
    assert error["code"] == "storage_unavailable"
    _assert_clean(error, stack, request_id)
    assert _documents_of(settings, gateway.key_id) == 0 and _jobs_of(settings, gateway.key_id) == 0
    assert _listed(gateway) == 0
    # The log keeps what the client was not told, on the line with the request id.
    logged = [json.loads(line) for log_file in stack.state_dir.rglob("upload*.log")
              for line in log_file.read_text(errors="replace").splitlines()
              if request_id in line and line.startswith("{")]
    failed = [entry for entry in logged if entry["event"] == "request.failed"]
    assert failed and str(stack.ports.minio) in failed[0]["detail"]
    # And the next upload, MinIO back, is taken as usual.
    again = gateway.upload(image_bytes(["STORED after the outage"]), "after.png")
    assert again.status == 202, again.body
    assert gateway.wait_final(again.json()["job_id"])["status"] == "completed"


def test_a_database_outage_answers_a_plain_503(gateway: Gateway, stack: Any) -> None:
    """MariaDB down: database_unavailable names no host, port or driver text, and carries the request id."""
    request_id = f"req-{uuid.uuid4().hex}"
    with _stopped(stack.mariadb):
        reply = gateway.request("GET", f"/function/status/{uuid.uuid4()}", headers={"X-Request-Id": request_id})
    assert reply.status == 503, reply.body
    error = reply.json()["error"]
    assert error["code"] == "database_unavailable"
    _assert_clean(error, stack, request_id)


# --- (8) inputs checked against what the schema holds ----------------------------------------------------


def test_filename_dot_dot_is_stored_as_document_and_completes(gateway: Gateway) -> None:
    """`..` is no file name: the upload is kept as `document` and read, not a 500 with a job pending forever."""
    reply = gateway.request("POST", "/function/upload?filename=..", body=image_bytes(["DOTS are no name"]),
                            headers={"Content-Type": "application/octet-stream"})
    assert reply.status == 202, reply.body
    done = gateway.wait_final(reply.json()["job_id"])
    assert done["status"] == "completed" and done["filename"] == "document"


@pytest.mark.parametrize(("fields", "query", "code", "limit"), [
    ({"lang": "+".join(["eng"] * 20)}, "", "invalid_language", "the limit is 64"),
    ({}, "?filename=" + quote_plus("a" * 252 + ".png"), "invalid_filename", "the limit is 255"),
    ({}, "?filename=" + quote_plus("語" * 90 + ".png"), "invalid_filename", "the limit is 255"),
])
def test_an_input_longer_than_its_column_is_a_400_naming_the_limit(
        gateway: Gateway, settings: Settings, fields: dict[str, str], query: str, code: str, limit: str) -> None:
    """A 79-character lang or a file name over 255 bytes: 400 with the limit, and no row made."""
    data = image_bytes(["TOO long"])
    if query:
        reply = gateway.request("POST", f"/function/upload{query}", body=data,
                                headers={"Content-Type": "application/octet-stream"})
    else:
        reply = gateway.upload(data, "long.png", **fields)
    assert reply.status == 400, reply.body
    error = reply.json()["error"]
    assert error["code"] == code and limit in error["message"]
    assert _documents_of(settings, gateway.key_id) == 0


def test_a_reprocess_language_longer_than_its_column_is_a_400(gateway: Gateway) -> None:
    """Re-process checks the language like upload does."""
    reply = gateway.upload(image_bytes(["REPROCESS me"]), "again.png")
    done = gateway.wait_final(reply.json()["job_id"])
    lang = quote_plus("+".join(["eng"] * 20))  # '+' itself would arrive as a space
    again = gateway.request("POST", f"/function/documents/{done['document_id']}/reprocess?lang={lang}")
    assert again.status == 400 and "the limit is 64" in again.json()["error"]["message"]


@pytest.mark.parametrize("request_id", ["r" * 65, "with space"])
def test_a_request_id_that_cannot_be_kept_is_a_400(gateway: Gateway, settings: Settings, request_id: str) -> None:
    """X-Request-Id is stored, logged and echoed: over 64 characters or not visible ASCII is refused, by name."""
    reply = gateway.upload(image_bytes(["ID check"]), "id.png", headers={"X-Request-Id": request_id})
    assert reply.status == 400, reply.body
    error = reply.json()["error"]
    assert error["code"] == "invalid_request_id" and "64" in error["message"]
    # Answered under an id of our own, so the refusal can be found in the log too.
    assert reply.headers["X-Request-Id"] == error["request_id"] != request_id
    assert _documents_of(settings, gateway.key_id) == 0


# --- (3) event floods ------------------------------------------------------------------------------------


def _record(bucket: str, key: str, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    return {"eventName": "s3:ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket},
                   "object": {"key": quote_plus(key), "size": 10, "eTag": uuid.uuid4().hex,
                              "contentType": "image/png", "userMetadata": metadata or {}}}}


def test_events_naming_objects_that_do_not_exist_make_no_rows(admin: Gateway, settings: Settings,
                                                               internal: dict[str, str]) -> None:
    """A record whose object is not in the bucket is rejected (object_missing) before any row is made."""
    keys = [f"manual/ghost-{uuid.uuid4().hex}-{i}.png" for i in range(MAX_EVENT_RECORDS)]
    body = json.dumps({"Records": [_record(settings.s3_bucket, key) for key in keys]}).encode()
    reply = admin.request("POST", "/function/ocr-process", body=body, headers=internal)
    assert reply.status == 200, reply.body
    outcomes = reply.json()["outcomes"]
    assert [o["result"] for o in outcomes] == ["rejected"] * len(keys)
    assert {o["error_code"] for o in outcomes} == {"object_missing"}
    assert sum(_documents_at(settings, key) for key in keys) == 0


def test_an_event_over_the_record_limit_is_refused_whole(admin: Gateway, s3: Any, settings: Settings,
                                                         internal: dict[str, str]) -> None:
    """MAX_EVENT_RECORDS + 1 records is 400 invalid_event naming the limit; not even a real object gets a row."""
    key = f"manual/{uuid.uuid4().hex}-real.png"
    data = image_bytes(["REAL but in a flood"])
    s3.put_object(settings.s3_bucket, key, io.BytesIO(data), len(data), content_type="image/png")
    records = [_record(settings.s3_bucket, key)] * (MAX_EVENT_RECORDS + 1)
    reply = admin.request("POST", "/function/ocr-process", body=json.dumps({"Records": records}).encode(),
                          headers=internal)
    assert reply.status == 400, reply.body
    error = reply.json()["error"]
    assert error["code"] == "invalid_event" and f"the limit is {MAX_EVENT_RECORDS}" in error["message"]
    assert _documents_at(settings, key) == 0


def test_a_drop_with_an_over_long_lang_is_rejected_without_rows(admin: Gateway, s3: Any, settings: Settings,
                                                                 internal: dict[str, str]) -> None:
    """An object's lang metadata too long for the job's column is rejected (invalid_language), not a 500 loop."""
    key = f"manual/{uuid.uuid4().hex}-lang.png"
    data = image_bytes(["LANG metadata"])
    s3.put_object(settings.s3_bucket, key, io.BytesIO(data), len(data), content_type="image/png")
    body = json.dumps({"Records": [_record(settings.s3_bucket, key, {"X-Amz-Meta-Lang": "eng+" * 20})]}).encode()
    reply = admin.request("POST", "/function/ocr-process", body=body, headers=internal)
    assert reply.status == 200, reply.body
    assert reply.json()["outcomes"] == [{"job_id": None, "result": "rejected", "error_code": "invalid_language"}]
    assert _documents_at(settings, key) == 0


# --- (9) fax TIFFs -----------------------------------------------------------------------------------


def test_an_uploaded_group4_fax_tiff_is_read(gateway: Gateway) -> None:
    """A CCITT G4 TIFF (mode 1, compression=group4), as fax software writes it, completes with its words."""
    fax = render_page(["FACSIMILE invoice 3141 settled"]).point(lambda v: 255 if v > 128 else 0).convert("1")
    buf = io.BytesIO()
    fax.save(buf, format="TIFF", compression="group4", dpi=(200, 200))
    reply = gateway.upload(buf.getvalue(), "fax.tif")
    assert reply.status == 202, reply.body
    done = gateway.wait_final(reply.json()["job_id"])
    assert done["status"] == "completed", done
    assert "facsimile invoice 3141 settled" in " ".join(done["text"].split()).lower()


# --- idempotent uploads ------------------------------------------------------------------------------


def test_a_retried_upload_with_the_same_idempotency_key_gets_the_first_answer(gateway: Gateway,
                                                                               settings: Settings) -> None:
    """Same key, same body: the same job id, marked replayed, and one document; another body is 409."""
    data = image_bytes(["ONCE only"])
    key = {"Idempotency-Key": f"retry-{uuid.uuid4().hex}"}
    first = gateway.upload(data, "once.png", headers=key)
    again = gateway.upload(data, "once.png", headers=key)
    assert first.status == again.status == 202, (first.body, again.body)
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true" and "Idempotent-Replayed" not in first.headers
    assert _documents_of(settings, gateway.key_id) == 1

    other = gateway.upload(image_bytes(["ANOTHER document"]), "once.png", headers=key)
    renamed = gateway.upload(data, "renamed.png", headers=key)
    for reply in (other, renamed):
        assert reply.status == 409 and reply.json()["error"]["code"] == "idempotency_key_reused"
    assert _documents_of(settings, gateway.key_id) == 1


def test_concurrent_uploads_with_one_idempotency_key_make_one_document(gateway: Gateway, settings: Settings) -> None:
    """Eight at once: one runs; the others get its answer or are told it is still running (409, retry)."""
    from concurrent.futures import ThreadPoolExecutor

    data = image_bytes(["CONCURRENT once"])
    key = {"Idempotency-Key": f"burst-{uuid.uuid4().hex}"}
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: gateway.upload(data, "burst.png", headers=key), range(8)))
    accepted = {r.json()["job_id"] for r in replies if r.status == 202}
    waiting = [r for r in replies if r.status == 409]
    assert len(accepted) == 1 and len(waiting) + sum(r.status == 202 for r in replies) == 8, [
        (r.status, r.body[:300]) for r in replies]
    assert all(r.json()["error"]["code"] == "idempotency_key_in_use" for r in waiting)
    assert _documents_of(settings, gateway.key_id) == 1


def test_idempotency_keys_belong_to_one_api_key(gateway: Gateway, stack: Any, settings: Settings) -> None:
    """Another client's same key is its own: a new document, nothing learnt of the first client's."""
    from tests.integration.conftest import new_key

    data = image_bytes(["SHARED key name"])
    key = {"Idempotency-Key": f"shared-{uuid.uuid4().hex}"}
    other = Gateway(stack.gateway_url, api_key=new_key(settings))
    mine, theirs = gateway.upload(data, "a.png", headers=key), other.upload(data, "a.png", headers=key)
    assert mine.status == theirs.status == 202
    assert mine.json()["job_id"] != theirs.json()["job_id"]


def test_a_refused_upload_does_not_use_up_its_idempotency_key(gateway: Gateway, stack: Any,
                                                              settings: Settings) -> None:
    """A 503 is not remembered: the retry with the same key, once MinIO is back, is accepted."""
    data = image_bytes(["RETRY after outage"])
    key = {"Idempotency-Key": f"outage-{uuid.uuid4().hex}"}
    with _stopped(stack.minio):
        assert gateway.upload(data, "r.png", headers=key).status == 503
    retried = gateway.upload(data, "r.png", headers=key)
    assert retried.status == 202 and "Idempotent-Replayed" not in retried.headers
    assert _documents_of(settings, gateway.key_id) == 1


def test_an_idempotency_key_that_cannot_be_kept_is_a_400(gateway: Gateway) -> None:
    """Over 255 characters (Stripe's limit) is invalid_idempotency_key naming the limit."""
    reply = gateway.upload(image_bytes(["KEY check"]), "k.png", headers={"Idempotency-Key": "k" * 256})
    assert reply.status == 400 and reply.json()["error"]["code"] == "invalid_idempotency_key"
    assert "255" in reply.json()["error"]["message"]
