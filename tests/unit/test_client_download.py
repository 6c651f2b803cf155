"""`Client.download`: the API's download route first, a service older than it through the status and its links.

A scripted HTTP server on 127.0.0.1 plays the service, answering in turn; what the client sent is checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocr_pipeline_client import Client, Downloaded, DownloadUnsupported, NotFound, OutputExists, OutputMissing
from ocr_pipeline_client.files import attachment_name
from tests.support import Answer, scripted_server

KEY = "ocr_0123456789ab_secret"
PDF = b"%PDF-1.7 the searchable result"


def error(status: int, code: str) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps({"error": {"code": code, "message": code}}).encode()


def status_of(base: str, state: str = "completed") -> Answer:
    """A status answer of job j1 (document d1, `scan.pdf`) with links back to the scripted server."""
    body = {"job_id": "j1", "document_id": "d1", "filename": "in/scan.pdf", "content_type": "application/pdf",
            "size_bytes": 10, "source": "upload", "status": state, "lang": "eng", "attempts": 1,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:01Z"}
    if state == "completed":
        body |= {"text": "the text\n", "outputs": {"searchable_pdf": f"{base}/bucket/scan.ocr.pdf?X-Amz-Signature=s",
                                                   "hocr": f"{base}/bucket/scan.hocr?X-Amz-Signature=s"}}
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def attachment(name: str, body: bytes) -> Answer:
    headers = {"Content-Type": "application/octet-stream", "Content-Disposition": f'attachment; filename="{name}"'}
    return 200, headers, body


def test_the_route_saves_into_a_folder_under_the_name_the_service_gives(tmp_path: Path) -> None:
    """One GET of /function/documents/{id}/download/{kind} with the key; the file takes Content-Disposition's name."""
    with scripted_server([attachment("scan.ocr.pdf", PDF)]) as (url, received):
        saved = Client(url, KEY).download("d1", "pdf", tmp_path)
    assert saved == Downloaded(tmp_path / "scan.ocr.pdf", len(PDF))
    assert (tmp_path / "scan.ocr.pdf").read_bytes() == PDF
    assert [(r.method, r.path) for r in received] == [("GET", "/function/documents/d1/download/pdf")]
    assert received[0].headers["Authorization"] == f"Bearer {KEY}"


def test_the_route_streams_into_a_named_file_or_a_binary_file(tmp_path: Path) -> None:
    """A path given is the name used, whatever the service calls it; a file object gets the bytes."""
    with scripted_server([attachment("scan.hocr", b"<html>hocr")]) as (url, _):
        client = Client(url, KEY)
        assert client.download("j1", "hocr", tmp_path / "mine.hocr") == Downloaded(tmp_path / "mine.hocr", 10)
        with (tmp_path / "stream").open("wb") as out:
            assert client.download("j1", "hocr", out) == Downloaded(None, 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.hocr", "stream"]


@pytest.mark.parametrize("given", ["../../evil.pdf", "..", "a\\b.pdf", ""])
def test_a_name_that_would_leave_the_folder_is_not_used(tmp_path: Path, given: str) -> None:
    """A service's name with a folder part (or none usable) gives way to the id and the kind's suffix."""
    folder = tmp_path / "out"
    folder.mkdir()
    with scripted_server([attachment(given, PDF)]) as (url, _):
        saved = Client(url, KEY).download("d1", "pdf", folder)
    assert saved.path == folder / "d1.ocr.pdf" and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_service_without_the_route_is_read_through_the_status_and_its_links(tmp_path: Path) -> None:
    """The route's own 404 (`not_found`): the status is read and its signed link fetched without the key, saved
    as the document's name with the result's suffix; the client asks that service's route no more."""
    answers = [error(404, "not_found"), status_of(""), (200, {}, PDF), status_of(""), (200, {}, b"<html>hocr")]
    with scripted_server(answers) as (url, received):
        answers[1] = answers[3] = status_of(url)
        client = Client(url, KEY)
        assert client.download("j1", "pdf", tmp_path) == Downloaded(tmp_path / "scan.ocr.pdf", len(PDF))
        assert client.download("j1", "hocr", tmp_path).path == tmp_path / "scan.hocr"
    assert [r.path.split("?")[0] for r in received] == [
        "/function/documents/j1/download/pdf", "/function/status/j1", "/bucket/scan.ocr.pdf", "/function/status/j1",
        "/bucket/scan.hocr"]
    assert "Authorization" not in received[2].headers and "Authorization" not in received[4].headers
    assert (tmp_path / "scan.ocr.pdf").read_bytes() == PDF and (tmp_path / "scan.hocr").read_bytes() == b"<html>hocr"


def test_text_from_a_service_without_the_route_is_the_status_text(tmp_path: Path) -> None:
    """`text` needs no link: the completed status holds it, saved as NAME.txt in UTF-8."""
    with scripted_server([error(404, "not_found"), status_of("")]) as (url, _):
        saved = Client(url, KEY).download("j1", "text", tmp_path)
    assert saved.path == tmp_path / "scan.txt" and saved.path.read_text() == "the text\n"


def test_the_original_from_a_service_without_the_route_is_unsupported(tmp_path: Path) -> None:
    """An older service links no original: a coded error, and nothing written."""
    with scripted_server([error(404, "not_found"), status_of("")]) as (url, _):
        with pytest.raises(DownloadUnsupported) as caught:
            Client(url, KEY).download("j1", "original", tmp_path)
    assert caught.value.code == "download_unsupported" and list(tmp_path.iterdir()) == []


def test_a_job_not_completed_on_a_service_without_the_route_has_no_output(tmp_path: Path) -> None:
    """A job still running has no result yet: OutputMissing saying its state."""
    with scripted_server([error(404, "not_found"), status_of("", "processing")]) as (url, _):
        with pytest.raises(OutputMissing, match="is processing"):
            Client(url, KEY).download("j1", "pdf", tmp_path)


def test_output_missing_from_the_route_is_output_missing_and_no_fallback(tmp_path: Path) -> None:
    """The route's `404 output_missing` (not made) is the answer: OutputMissing, one request."""
    with scripted_server([error(404, "output_missing")]) as (url, received):
        with pytest.raises(OutputMissing) as caught:
            Client(url, KEY).download("d1", "hocr", tmp_path)
    assert caught.value.code == "output_missing" and caught.value.http_status == 404 and len(received) == 1


def test_an_unknown_document_is_not_taken_for_an_older_service(tmp_path: Path) -> None:
    """Any 404 code but the route's own is the service's answer about the id."""
    with scripted_server([error(404, "document_not_found")]) as (url, received):
        with pytest.raises(NotFound) as caught:
            Client(url, KEY).download("nope", "text", tmp_path)
    assert caught.value.code == "document_not_found" and len(received) == 1


def test_a_path_that_exists_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    """A taken path costs no request and stays as it is; overwrite=True replaces it."""
    taken = tmp_path / "scan.ocr.pdf"
    taken.write_bytes(b"the user's own")
    with scripted_server([attachment("scan.ocr.pdf", PDF)]) as (url, received):
        with pytest.raises(OutputExists):
            Client(url, KEY).download("d1", "pdf", taken)
        assert Client(url, KEY).download("d1", "pdf", taken, overwrite=True).size == len(PDF)
    assert len(received) == 1 and taken.read_bytes() == PDF


def test_a_name_the_service_gives_that_exists_in_the_folder_is_left_as_it_is(tmp_path: Path) -> None:
    """Saving into a folder never replaces the file of the name the service gives, and leaves no temporary."""
    (tmp_path / "scan.ocr.pdf").write_bytes(b"the user's own")
    with scripted_server([attachment("scan.ocr.pdf", PDF)]) as (url, _):
        with pytest.raises(OutputExists):
            Client(url, KEY).download("d1", "pdf", tmp_path)
    assert (tmp_path / "scan.ocr.pdf").read_bytes() == b"the user's own"
    assert [p.name for p in tmp_path.iterdir()] == ["scan.ocr.pdf"]  # no temporary file left behind


def test_an_unknown_kind_is_refused_before_any_request(tmp_path: Path) -> None:
    """A kind the contract does not have is a ValueError naming the kinds, before anything is sent."""
    with scripted_server([attachment("x", b"")]) as (url, received):
        with pytest.raises(ValueError, match="choose from text, pdf, hocr, original"):
            Client(url, KEY).download("d1", "docx", tmp_path)
    assert received == []


@pytest.mark.parametrize(("header", "name"), [
    ('attachment; filename="scan.ocr.pdf"', "scan.ocr.pdf"),
    ("attachment; filename=\"n-ame.txt\"; filename*=UTF-8''n%C3%A4me.txt", "n\u00e4me.txt"),
    ('attachment; filename="a b.hocr"', "a b.hocr"),
    ('attachment; filename="../../etc/passwd"', None), ('attachment; filename="..."', None),
    ("attachment; filename*=UTF-8''a%0Ab.txt", None), ("attachment", None), (None, None),
])
def test_the_attachment_name_is_a_bare_file_name(header: str | None, name: str | None) -> None:
    """filename* (RFC 5987) before filename; anything with a folder part or control characters is no name."""
    assert attachment_name(header) == name
