"""The status function read by document id: the id `list` prints reaches the document's current job's result."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from common.config import Settings
from tests.integration.conftest import new_key
from tests.support import Gateway, image_bytes

pytestmark = pytest.mark.integration


def _completed(gateway: Gateway, lines: list[str], name: str) -> dict[str, Any]:
    reply = gateway.upload(image_bytes(lines), name)
    assert reply.status == 202, reply.body
    done = gateway.wait_final(reply.json()["job_id"])
    assert done["status"] == "completed", done
    return done


def test_a_document_id_reads_its_current_jobs_status_text_and_pages(gateway: Gateway) -> None:
    """JSON, format=text and include=pages by document id answer exactly what the job id answers."""
    done = _completed(gateway, ["DOCUMENT id reads walrus"], "walrus.png")
    document, job = done["document_id"], done["job_id"]

    by_document = gateway.status(document)
    assert by_document.status == 200, by_document.body
    body = by_document.json()
    assert body["job_id"] == job and body["document_id"] == document
    assert {k: v for k, v in body.items() if k != "outputs"} == {
        k: v for k, v in gateway.status(job).json().items() if k != "outputs"}
    assert set(body["outputs"]) == {"searchable_pdf", "hocr"}
    text = gateway.status(document, "?format=text")
    assert text.status == 200 and text.body.decode() == done["text"]
    pages = gateway.status(document, "?include=pages").json()["pages"]
    assert [p["page"] for p in pages] == [1] and "walrus" in pages[0]["text"].lower()
    assert gateway.request("GET", f"/function/status?job_id={document}").json()["job_id"] == job


def test_a_document_id_follows_a_reprocess_once_the_new_job_completes(gateway: Gateway) -> None:
    """While a re-process runs the document id reads the result the document shows; after, the new job's."""
    first = _completed(gateway, ["Zeugnis und Urkunde"], "german.png")
    document = first["document_id"]
    reply = gateway.request("POST", f"/function/documents/{document}/reprocess", fields={"lang": "deu"})
    assert reply.status == 202, reply.body
    again = reply.json()["job_id"]
    shown = gateway.status(document).json()
    # Right after the request the new job has not completed (it may be pending or just done in a fast run).
    assert shown["job_id"] in (first["job_id"], again)
    if shown["job_id"] == first["job_id"]:
        assert shown["status"] == "completed" and shown["text"] == first["text"]

    gateway.wait_final(again)
    now = gateway.status(document).json()
    assert now["job_id"] == again and now["lang"] == "deu" and now["document_id"] == document


def test_another_keys_document_id_is_answered_like_a_missing_id(gateway: Gateway, stack: Any,
                                                                settings: Settings) -> None:
    """A document of another key, read by its id, is the same 404 job_not_found as an id nobody has."""
    mine = _completed(gateway, ["PRIVATE page of the first key"], "mine.png")
    other = Gateway(stack.gateway_url, api_key=new_key(settings))
    same_id = {"X-Request-Id": f"req-{uuid.uuid4().hex}"}
    foreign = other.request("GET", f"/function/status/{mine['document_id']}", headers=same_id)
    missing_id = str(uuid.uuid4())
    missing = other.request("GET", f"/function/status/{missing_id}", headers=same_id)
    assert foreign.status == missing.status == 404
    assert foreign.json()["error"]["code"] == "job_not_found"
    assert foreign.body.replace(mine["document_id"].encode(), b"ID") == missing.body.replace(
        missing_id.encode(), b"ID")
    assert other.status(mine["document_id"], "?format=text").status == 404
