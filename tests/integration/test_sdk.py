"""The Python SDK (`ocr_pipeline_client.Client`) against the real stack: typed answers, typed errors with the service's
codes, waiting, paging and downloads."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest

from common.config import Settings
from common.rules import apikeys
from ocr_pipeline_client import (AuthenticationFailed, BadRequest, Client, Conflict, Downloaded, JobFailed, JobStatus,
                                 NotFound, UploadAccepted, Unreachable)
from tests.support import image_bytes, scanned_pdf

pytestmark = pytest.mark.integration


@pytest.fixture
def client(stack: Any, settings: Settings) -> Client:
    """A client with a user key of its own."""
    return Client(stack.gateway_url, apikeys.create(settings, f"sdk-{uuid.uuid4().hex[:8]}").token)


def test_upload_wait_text_and_download_a_scanned_pdf(client: Client) -> None:
    """upload answers a typed UploadAccepted; wait reports progress up to completed; text and both downloads
    hold the document."""
    accepted = client.upload(scanned_pdf([["SDK first page"], ["SDK second page"]]), filename="two.pdf", lang="eng")
    assert isinstance(accepted, UploadAccepted) and accepted.status == "pending"
    seen: list[JobStatus] = []
    done = client.wait(accepted.job_id, timeout=120, interval=0.2, on_progress=seen.append)
    assert done.status == "completed" and done.page_count == 2 and done.pages_done == 2
    assert done.filename == "two.pdf" and done.content_type == "application/pdf" and done.lang == "eng"
    assert [s.pages_done for s in seen] == sorted(s.pages_done for s in seen)
    assert "sdk second page" in " ".join(client.text(accepted.job_id).split()).lower()
    pdf = io.BytesIO()
    assert client.download(accepted.job_id, "pdf", pdf) == Downloaded(None, len(pdf.getvalue()))
    assert len(pdf.getvalue()) > 0
    assert pdf.getvalue().startswith(b"%PDF-")
    hocr = io.BytesIO()
    client.download(done, "hocr", hocr)
    assert b"ocr_page" in hocr.getvalue()
    assert client.status(accepted.job_id, include="pages").pages is not None


def test_upload_can_ask_for_a_pdfa_searchable_pdf(client: Client) -> None:
    import pikepdf

    accepted = client.upload(image_bytes(["SDK archive copy"]), filename="archive.png", output="pdfa")
    assert client.wait(accepted.job_id, timeout=120).status == "completed"
    pdf = io.BytesIO()
    client.download(accepted.job_id, "pdf", pdf)
    with pikepdf.open(pdf) as searchable:
        assert searchable.open_metadata().get("pdfaid:part") == "2"


def test_upload_from_a_path_keeps_its_name(client: Client, tmp_path: Any) -> None:
    """A path is streamed from disk under its own file name."""
    path = tmp_path / "from disk.png"
    path.write_bytes(image_bytes(["DISK upload"]))
    done = client.wait(client.upload(path).job_id, timeout=120)
    assert done.filename == "from disk.png" and done.status == "completed"


def test_errors_carry_the_services_codes(client: Client, stack: Any) -> None:
    """Refusals raise typed errors with the contract's codes: 415, 401, 404, and a job failure on wait."""
    with pytest.raises(BadRequest) as refused:
        client.upload(b"just some text, no document", filename="notes.png")
    assert refused.value.code == "unsupported_media_type" and refused.value.http_status == 415
    assert refused.value.request_id

    with pytest.raises(AuthenticationFailed) as unknown_key:
        Client(stack.gateway_url, "ocr_000000000000_" + "x" * 43).list()
    assert unknown_key.value.code == "invalid_api_key"
    with pytest.raises(AuthenticationFailed) as no_key:
        Client(stack.gateway_url, None).list()
    assert no_key.value.code == "unauthenticated"

    with pytest.raises(NotFound) as missing:
        client.status(str(uuid.uuid4()))
    assert missing.value.code == "job_not_found"

    broken = client.upload(b"%PDF-1.7\n" + b"\x00garbage" * 200, filename="broken.pdf")
    with pytest.raises(JobFailed) as failed:
        client.wait(broken.job_id, timeout=120, raise_on_failure=True)
    assert failed.value.code == "corrupt_document" and failed.value.job_id == broken.job_id
    with pytest.raises(Conflict) as not_completed:
        client.text(broken.job_id)
    assert not_completed.value.code == "job_not_completed"

    with pytest.raises(Unreachable):
        Client("http://127.0.0.1:9", None, timeout=2).list()


def test_list_pages_and_iter_documents_follows_cursors(client: Client) -> None:
    """list answers one typed page; iter_documents walks every page by cursor, filters applied."""
    names = [f"paged{i}.png" for i in range(3)]
    for name in names:
        client.wait(client.upload(image_bytes([f"PAGED {name}"]), filename=name).job_id, timeout=120)
    page = client.list(limit=2)
    assert len(page.items) == 2 and page.total == 3 and page.next_cursor
    assert [d.filename for d in client.iter_documents(page_size=1)] == names[::-1]
    assert [d.filename for d in client.iter_documents(page_size=2, sort="created_at_asc", status="completed")] == names
    with pytest.raises(TypeError, match="unknown list filter"):
        client.list(colour="red")


def test_delete_removes_the_document(client: Client) -> None:
    """delete answers nothing; the job is then not found, and a second delete is NotFound."""
    accepted = client.upload(image_bytes(["DELETE me"]), filename="gone.png")
    client.wait(accepted.job_id, timeout=120)
    assert client.document(accepted.document_id)["document_id"] == accepted.document_id
    client.delete(accepted.document_id)
    with pytest.raises(NotFound):
        client.status(accepted.job_id)
    with pytest.raises(NotFound) as again:
        client.delete(accepted.document_id)
    assert again.value.code == "document_not_found"


def test_a_document_id_reads_the_current_job_and_a_taken_path_is_never_replaced(client: Client,
                                                                               tmp_path: Any) -> None:
    """status, text and download take the document id; download to a path that exists raises OutputExists and
    leaves the file, overwrite=True replaces it."""
    from ocr_pipeline_client import OutputExists

    accepted = client.upload(image_bytes(["SDK by document"]), filename="bydoc.png")
    assert client.wait(accepted.document_id, timeout=120).job_id == accepted.job_id
    assert client.status(accepted.document_id).job_id == accepted.job_id
    assert "sdk by document" in " ".join(client.text(accepted.document_id).split()).lower()
    target = tmp_path / "bydoc.ocr.pdf"
    target.write_bytes(b"the user's file")
    with pytest.raises(OutputExists) as refused:
        client.download(accepted.document_id, "searchable_pdf", target)
    assert refused.value.code == "output_exists" and refused.value.path == str(target)
    assert target.read_bytes() == b"the user's file"
    assert client.download(accepted.document_id, "pdf", target, overwrite=True).size > 0
    assert target.read_bytes().startswith(b"%PDF-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bydoc.ocr.pdf"]  # no temporary left
