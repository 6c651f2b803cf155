"""What a job records of its outputs: the object keys, and `pdfa` only when PDF/A was asked for."""

from __future__ import annotations

from common.engine.pdfa.result import CODES, PdfaResult
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


def test_the_recorded_pdfa_result_matches_the_contract() -> None:
    """docs/openapi.yaml's PdfaResult takes a made result and one refused with each code, and names every code."""
    from tests.unit.test_openapi import schema_validator, spec

    document = spec()
    validator = schema_validator(document, "PdfaResult")
    for result in [PdfaResult(made=True), *(PdfaResult(made=False, code=code, reason="why") for code in CODES)]:
        validator.validate(result.to_dict())
    [named] = [option for option in document["components"]["schemas"]["PdfaResult"]["properties"]["code"]["oneOf"]
               if option.get("type") == "string"]
    assert set(named["enum"]) == set(CODES)
