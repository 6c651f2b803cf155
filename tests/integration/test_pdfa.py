"""`output=pdfa` on an upload: the searchable PDF comes back PDF/A-2b, also when a long PDF was read in chunks;
veraPDF judges what was stored."""

from __future__ import annotations

import io
from pathlib import Path

import pikepdf
import pytest

from tests.support import Gateway, image_bytes, render_page, scanned_pdf
from tests.conftest import Verapdf

pytestmark = pytest.mark.integration


def searchable_of(gateway: Gateway, job_id: str, keep: Path,
                  pdfa: dict[str, object] | None = None) -> pikepdf.Pdf:
    """The job's stored searchable PDF, also written to `keep` for veraPDF; the status's `outputs.pdfa` must be
    `pdfa` (absent when None)."""
    done = gateway.wait_final(job_id, timeout=300)
    assert done["status"] == "completed", done
    assert done["outputs"].get("pdfa") == pdfa, done["outputs"]
    reply = gateway.follow_link(done["outputs"]["searchable_pdf"])
    assert reply.status == 200
    keep.write_bytes(reply.data)
    return pikepdf.open(io.BytesIO(reply.data))


MADE = {"conformant": True, "code": None, "reason": None}


def is_pdfa_2b(pdf: pikepdf.Pdf) -> bool:
    meta = pdf.open_metadata()
    return "/OutputIntents" in pdf.Root and (meta.get("pdfaid:part"), meta.get("pdfaid:conformance")) == ("2", "B")


@pytest.mark.parametrize("output, expected", [("pdfa", True), ("pdf", False)])
def test_the_output_parameter_chooses_pdfa_or_plain(gateway: Gateway, verapdf: Verapdf,  # noqa: F811
                                                     tmp_path: Path, output: str, expected: bool) -> None:
    reply = gateway.upload(image_bytes(["ARCHIVE this page"]), "archive.png", output=output)
    assert reply.status == 202, reply.body
    with searchable_of(gateway, reply.json()["job_id"], tmp_path / "searchable.pdf",
                       MADE if expected else None) as pdf:
        assert is_pdfa_2b(pdf) is expected
    result = verapdf(tmp_path / "searchable.pdf")
    assert result.returncode == (0 if expected else 1), result.stdout + result.stderr


def test_a_pdfa_document_read_in_chunks_is_pdfa_once_assembled(gateway: Gateway, verapdf: Verapdf,  # noqa: F811
                                                                tmp_path: Path) -> None:
    reply = gateway.upload(scanned_pdf([[f"CHUNKED archive page {n}"] for n in range(10)]), "ten.pdf", output="pdfa")
    assert reply.status == 202, reply.body
    with searchable_of(gateway, reply.json()["job_id"], tmp_path / "searchable.pdf", MADE) as pdf:
        assert len(pdf.pages) == 10 and is_pdfa_2b(pdf)
    result = verapdf(tmp_path / "searchable.pdf")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_pdfa_request_that_cannot_be_met_says_so_in_the_status(gateway: Gateway, tmp_path: Path) -> None:
    """A CMYK scan asked as PDF/A: the job completes with a plain searchable PDF that claims no PDF/A, and the
    status's `outputs.pdfa` says `conformant: false` with the code and the reason (also from the cache)."""
    buf = io.BytesIO()
    render_page(["CMYK press proof"]).convert("CMYK").save(buf, format="PDF", resolution=300)
    reply = gateway.upload(buf.getvalue(), "proof.pdf", output="pdfa")
    assert reply.status == 202, reply.body
    job_id = reply.json()["job_id"]
    refused = {"conformant": False, "code": "pdfa_cmyk_colour", "reason": "an image is in CMYK colour"}
    with searchable_of(gateway, job_id, tmp_path / "searchable.pdf", refused) as pdf:
        assert not is_pdfa_2b(pdf) and pdf.open_metadata().get("pdfaid:part") is None
    again = gateway.wait_final(job_id, timeout=10)  # a second read, served from the cache
    assert again["outputs"]["pdfa"] == refused and again["outputs"]["searchable_pdf"].startswith("http")


def test_an_unknown_output_is_a_400_naming_the_choices(gateway: Gateway) -> None:
    reply = gateway.upload(image_bytes(["x"]), "x.png", output="tiff")
    assert reply.status == 400 and "pdf, pdfa" in reply.json()["error"]["message"]
