"""What a job records of its outputs: the object keys, and `pdfa` only when PDF/A was asked for."""

from __future__ import annotations

from common.engine.pdfa_result import CODES, PdfaResult
from common.rules.outputs import Stored


def test_a_job_without_a_pdfa_request_records_its_keys_only() -> None:
    """No `pdfa` entry: the status's `outputs` stays a map of links."""
    stored = Stored(keys={"searchable_pdf": "results/j/searchable.pdf", "hocr": "results/j/ocr.hocr"}, pdfa=None)
    assert stored.record() == {"searchable_pdf": "results/j/searchable.pdf", "hocr": "results/j/ocr.hocr"}


def test_a_pdfa_request_is_recorded_beside_the_keys() -> None:
    """`pdfa` holds conformant, code and reason: made, or refused with one of the stable codes."""
    made = Stored(keys={"searchable_pdf": "k"}, pdfa=PdfaResult(made=True))
    assert made.record() == {"searchable_pdf": "k", "pdfa": {"conformant": True, "code": None, "reason": None}}
    refused = Stored(keys={"searchable_pdf": "k"},
                     pdfa=PdfaResult(made=False, code="pdfa_cmyk_colour", reason="an image is in CMYK colour"))
    assert refused.record()["pdfa"] == {"conformant": False, "code": "pdfa_cmyk_colour",
                                        "reason": "an image is in CMYK colour"}
    assert "pdfa_cmyk_colour" in CODES and all(code.startswith("pdfa_") for code in CODES)
