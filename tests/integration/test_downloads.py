"""Downloads through the API: text, searchable PDF, hOCR and the original, by job or document id, for their owner
only, named after the original, streamed from MinIO; the status answer's links lead there (or to MinIO, signed)."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import urllib3
from sqlalchemy import update

from common.adapters.db import Document, Job, session_scope
from common.config import Settings
from common.models import TRUSTED
from common.rules import jobs
from common.rules.status import job_status
from tests.integration.conftest import new_key
from tests.integration.test_bodies import rss_kib
from tests.integration.test_supervision import children_of
from tests.support import Gateway, image_bytes

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
NAME = "Überweisung März.png"


@pytest.fixture(scope="module")
def owner(stack: Any, settings: Settings) -> Gateway:
    return Gateway(stack.gateway_url, api_key=new_key(settings))


@pytest.fixture(scope="module")
def done(owner: Gateway) -> dict[str, Any]:
    """One completed scan of the owner's, with a name that is not ASCII."""
    scan = image_bytes(["Remittance advice 7731", "Paid in full"])
    reply = owner.upload(scan, NAME)
    assert reply.status == 202, reply.body
    final = owner.wait_final(reply.json()["job_id"])
    assert final["status"] == "completed", final
    return {**final, "original": scan}


QUOTED = "%C3%9Cberweisung%20M%C3%A4rz"


def disposition(plain_stem: str, suffix: str) -> str:
    return f"attachment; filename=\"{plain_stem}{suffix}\"; filename*=UTF-8''{QUOTED}{suffix}"


@pytest.mark.parametrize(("kind", "suffix", "content_type"), [
    ("text", ".txt", "text/plain; charset=utf-8"),
    ("pdf", ".ocr.pdf", "application/pdf"),
    ("hocr", ".hocr", "text/vnd.hocr+html; charset=utf-8"),
    ("original", ".png", "image/png"),
])
@pytest.mark.parametrize("by", ["job_id", "document_id"])
def test_each_kind_downloads_by_job_or_document_id_under_the_originals_name(
        owner: Gateway, done: dict[str, Any], kind: str, suffix: str, content_type: str, by: str) -> None:
    """Each kind answers 200 with its type, its length and `attachment` named after the original (filename*
    for the non-ASCII name); a document id downloads its current job's output."""
    reply = owner.request("GET", f"/function/documents/{done[by]}/download/{kind}")
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == content_type
    assert reply.headers["Content-Disposition"] == disposition("Uberweisung Marz", suffix)
    assert int(reply.headers["Content-Length"]) == len(reply.body)
    if kind == "text":
        assert reply.body.decode() == done["text"] and "remittance" in done["text"].lower()
    elif kind == "pdf":
        assert reply.body.startswith(b"%PDF-")
    elif kind == "hocr":
        assert b"ocr_page" in reply.body
    else:
        assert reply.body == done["original"]


def test_an_ascii_name_has_a_plain_quoted_filename(owner: Gateway) -> None:
    """scan.pdf's searchable PDF is saved as scan.ocr.pdf: one quoted filename, nothing else."""
    reply = owner.upload(image_bytes(["Plain name"]), "scan.png")
    job = owner.wait_final(reply.json()["job_id"])["job_id"]
    got = owner.request("GET", f"/function/documents/{job}/download/pdf")
    assert got.headers["Content-Disposition"] == 'attachment; filename="scan.ocr.pdf"'


def test_another_keys_document_is_answered_like_an_unknown_one(stack: Any, settings: Settings,
                                                                  done: dict[str, Any]) -> None:
    """Another key gets the same 404 for the owner's job and document ids as for ids that do not exist."""
    other = Gateway(stack.gateway_url, api_key=new_key(settings))
    for known in (done["job_id"], done["document_id"]):
        unknown = str(uuid.uuid4())
        theirs = other.request("GET", f"/function/documents/{known}/download/pdf")
        missing = other.request("GET", f"/function/documents/{unknown}/download/pdf")
        assert theirs.status == missing.status == 404
        assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "job_not_found"
        assert theirs.json()["error"]["message"].replace(known, "ID") == \
            missing.json()["error"]["message"].replace(unknown, "ID")
    anonymous = Gateway(stack.gateway_url).request("GET", f"/function/documents/{done['job_id']}/download/text")
    assert anonymous.status == 401


def test_an_output_not_made_is_output_missing_and_an_unknown_kind_a_bad_request(
        owner: Gateway, settings: Settings) -> None:
    """A completed job whose record has no hOCR answers 404 output_missing; `kind` outside the four a 400."""
    reply = owner.upload(image_bytes(["No hocr here"]), "bare.png")
    job = owner.wait_final(reply.json()["job_id"])["job_id"]
    with session_scope(settings) as session:
        stored = json.loads(session.get(Job, job).outputs)  # type: ignore[union-attr]
        del stored["hocr"]
        session.execute(update(Job).where(Job.id == job).values(outputs=json.dumps(stored)))
    missing = owner.request("GET", f"/function/documents/{job}/download/hocr")
    assert (missing.status, missing.json()["error"]["code"]) == (404, "output_missing")
    assert owner.request("GET", f"/function/documents/{job}/download/pdf").status == 200
    bad = owner.request("GET", f"/function/documents/{job}/download/docx")
    assert (bad.status, bad.json()["error"]["code"]) == (400, "bad_request")


def test_a_job_not_completed_is_409_but_its_original_downloads(owner: Gateway, settings: Settings,
                                                                done: dict[str, Any]) -> None:
    """A pending job's outputs answer 409 job_not_completed; the original it will read is there already."""
    with session_scope(settings) as session:
        document = session.get(Document, done["document_id"])
        assert document is not None
        pending = jobs.create(session, document, "eng", 3, None, document.owner_id).id
    try:
        for kind in ("text", "pdf", "hocr"):
            reply = owner.request("GET", f"/function/documents/{pending}/download/{kind}")
            assert (reply.status, reply.json()["error"]["code"]) == (409, "job_not_completed"), kind
        original = owner.request("GET", f"/function/documents/{pending}/download/original")
        assert original.status == 200 and original.body == done["original"]
        # The document id still means the job whose result it shows: the completed one.
        assert owner.request("GET", f"/function/documents/{done['document_id']}/download/text").status == 200
    finally:
        with session_scope(settings) as session:
            session.execute(update(Job).where(Job.id == pending).values(status="failed", error_code="cancelled"))


def test_status_links_are_api_downloads_that_work_with_the_key(stack: Any, owner: Gateway,
                                                               done: dict[str, Any]) -> None:
    """By default `outputs` are the gateway's download URLs for the job: with the key they download."""
    outputs = owner.status(done["job_id"]).json()["outputs"]
    base = stack.gateway_url.rstrip("/")
    assert outputs["searchable_pdf"] == f"{base}/function/documents/{done['job_id']}/download/pdf"
    assert outputs["hocr"] == f"{base}/function/documents/{done['job_id']}/download/hocr"
    for url in (outputs["searchable_pdf"], outputs["hocr"]):
        reply = owner.request("GET", url.removeprefix(base))
        assert reply.status == 200
    assert Gateway(stack.gateway_url).request("GET", outputs["searchable_pdf"].removeprefix(base)).status == 401


def test_presigned_option_keeps_signed_minio_links(settings: Settings, done: dict[str, Any]) -> None:
    """OUTPUT_LINKS=presigned: the status read's links are MinIO's own, signed, and open without a key."""
    presigned = dataclasses.replace(settings, output_links="presigned")
    outputs = job_status(presigned, done["job_id"], TRUSTED).body["outputs"]
    assert "X-Amz-Signature=" in outputs["searchable_pdf"]
    reply = urllib3.PoolManager(retries=False).request("GET", outputs["searchable_pdf"])
    assert reply.status == 200 and reply.data.startswith(b"%PDF-")


def documents_processes(stack: Any) -> list[int]:
    """The documents function's processes (functions-framework and any worker it forked)."""
    [gateway] = children_of(stack.gateway.pid())
    found: list[int] = []
    for pid in children_of(gateway):
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if any(arg.endswith(b"functions/documents/handler.py") for arg in argv):
            found += [pid, *children_of(pid)]
    assert found, "no documents function process under the gateway"
    return found


def test_a_large_output_is_streamed_without_the_function_holding_it(stack: Any, owner: Gateway, settings: Settings,
                                                                    s3: Any) -> None:
    """A 96 MiB output downloads whole while the function's memory grows by far less than the object."""
    reply = owner.upload(image_bytes(["Large output"]), "large.png")
    job = owner.wait_final(reply.json()["job_id"])["job_id"]
    key = f"{settings.results_prefix}{job}/large.hocr"
    size = 96 * MiB
    s3.put_object(settings.s3_bucket, key, io.BytesIO(b"<p>" + b"x" * (size - 3)), size)
    with session_scope(settings) as session:
        session.execute(update(Job).where(Job.id == job).values(outputs=json.dumps({"hocr": key})))
    owner.request("GET", f"/function/documents/{job}/download/text")  # the process has served once
    pids = documents_processes(stack)
    before = sum(rss_kib(p) for p in pids)
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], sum(rss_kib(p) for p in pids))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        got = owner.http.request("GET", owner.base + f"/function/documents/{job}/download/hocr",
                                 headers=owner.default_headers, preload_content=False)
        assert got.status == 200 and int(got.headers["Content-Length"]) == size
        received = sum(len(chunk) for chunk in got.stream(256 * 1024))
        got.release_conn()
    finally:
        stop.set()
        sampler.join()
    assert received == size
    grown = (peak[0] - before) * 1024
    assert grown < size / 4, f"the function grew by {grown / MiB:.1f} MiB serving a {size / MiB:.0f} MiB object"


def test_a_page_preview_is_a_png_of_the_pages_shape_made_once_and_kept(owner: Gateway, settings: Settings, s3: Any,
                                                                         stack: Any, done: dict[str, Any]) -> None:
    """GET .../pages/1/preview: a PNG with the page's proportions, kept in MinIO under the job's results (a second
    read is the same bytes); page 0 or past the last is 404 page_not_found; another key's is job_not_found."""
    from PIL import Image

    from common.rules.previews import preview_key

    path = f"/function/documents/{done['document_id']}/pages/1/preview"
    first = owner.request("GET", path)
    assert first.status == 200, first.body
    assert first.headers["Content-Type"] == "image/png"
    with Image.open(io.BytesIO(first.body)) as picture:
        size = picture.size
    page = owner.status(done["job_id"], "?include=pages").json()["pages"][0]
    assert abs(size[0] / size[1] - page["width"] / page["height"]) < 0.01, (size, page)
    assert s3.stat_object(settings.s3_bucket, preview_key(settings, done["job_id"], 1)).size == len(first.body)
    assert owner.request("GET", path).body == first.body
    for number in ("0", "2", "x"):
        reply = owner.request("GET", f"/function/documents/{done['job_id']}/pages/{number}/preview")
        assert (reply.status, reply.json()["error"]["code"]) == (404, "page_not_found"), number
    other = Gateway(stack.gateway_url, api_key=new_key(settings)).request("GET", path)
    assert (other.status, other.json()["error"]["code"]) == (404, "job_not_found")


def test_a_pdf_pages_preview_is_rendered_from_the_pdf(owner: Gateway) -> None:
    """Page 2 of a two-page scanned PDF previews as a PNG of that page's shape."""
    from PIL import Image

    from tests.support import scanned_pdf

    reply = owner.upload(scanned_pdf([["First page"], ["Second page"]]), "two.pdf")
    job = owner.wait_final(reply.json()["job_id"])["job_id"]
    got = owner.request("GET", f"/function/documents/{job}/pages/2/preview")
    assert got.status == 200 and got.body.startswith(b"\x89PNG")
    page = owner.status(job, "?include=pages").json()["pages"][1]
    with Image.open(io.BytesIO(got.body)) as picture:
        assert abs(picture.size[0] / picture.size[1] - page["width"] / page["height"]) < 0.01
