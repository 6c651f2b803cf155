"""`output=pdfa` on an upload: the searchable PDF comes back PDF/A-2b, also when a long PDF was read in chunks;
veraPDF judges what was stored."""

from __future__ import annotations

import io
from pathlib import Path

import pikepdf
import pytest

from tests.support import Gateway, image_bytes, scanned_pdf
from tests.conftest import Verapdf

pytestmark = pytest.mark.integration


def searchable_of(gateway: Gateway, job_id: str, keep: Path) -> pikepdf.Pdf:
    """The job's stored searchable PDF, also written to `keep` for veraPDF."""
    done = gateway.wait_final(job_id, timeout=300)
    assert done["status"] == "completed", done
    reply = gateway.http.request("GET", done["outputs"]["searchable_pdf"])
    assert reply.status == 200
    keep.write_bytes(reply.data)
    return pikepdf.open(io.BytesIO(reply.data))


def is_pdfa_2b(pdf: pikepdf.Pdf) -> bool:
    meta = pdf.open_metadata()
    return "/OutputIntents" in pdf.Root and (meta.get("pdfaid:part"), meta.get("pdfaid:conformance")) == ("2", "B")


@pytest.mark.parametrize("output, expected", [("pdfa", True), ("pdf", False)])
def test_the_output_parameter_chooses_pdfa_or_plain(gateway: Gateway, verapdf: Verapdf,  # noqa: F811
                                                     tmp_path: Path, output: str, expected: bool) -> None:
    reply = gateway.upload(image_bytes(["ARCHIVE this page"]), "archive.png", output=output)
    assert reply.status == 202, reply.body
    with searchable_of(gateway, reply.json()["job_id"], tmp_path / "searchable.pdf") as pdf:
        assert is_pdfa_2b(pdf) is expected
    result = verapdf(tmp_path / "searchable.pdf")
    assert result.returncode == (0 if expected else 1), result.stdout + result.stderr


def test_a_pdfa_document_read_in_chunks_is_pdfa_once_assembled(gateway: Gateway, verapdf: Verapdf,  # noqa: F811
                                                                tmp_path: Path) -> None:
    reply = gateway.upload(scanned_pdf([[f"CHUNKED archive page {n}"] for n in range(10)]), "ten.pdf", output="pdfa")
    assert reply.status == 202, reply.body
    with searchable_of(gateway, reply.json()["job_id"], tmp_path / "searchable.pdf") as pdf:
        assert len(pdf.pages) == 10 and is_pdfa_2b(pdf)
    result = verapdf(tmp_path / "searchable.pdf")
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_unknown_output_is_a_400_naming_the_choices(gateway: Gateway) -> None:
    reply = gateway.upload(image_bytes(["x"]), "x.png", output="tiff")
    assert reply.status == 400 and "pdf, pdfa" in reply.json()["error"]["message"]
