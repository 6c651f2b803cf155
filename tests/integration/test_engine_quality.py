"""End to end: a garbled text layer is OCRed and says why, every page has lines and hOCR, pages come in parts."""

from __future__ import annotations

import io
from pathlib import Path

import pikepdf

from tests.support import Gateway
from tests.unit.test_engine_quality import LINES, layered_pdf


def three_page_pdf(folder: Path) -> bytes:
    """Page 1: a scan whose layer is CJK mojibake; page 2: a good layer; page 3: a layer of symbols only."""
    parts = [
        layered_pdf(folder / "garbled.pdf", LINES, {code: code << 8 for code in range(0x21, 0x7F)}),
        layered_pdf(folder / "good.pdf", LINES),
        layered_pdf(folder / "symbols.pdf", ['"7+%- ,(!# *&$" 7+%-#@! (%)-+*;', '"7+%- #&*" "+%-!@"']),
    ]
    out = pikepdf.new()
    for part in parts:
        with pikepdf.open(part) as pdf:
            out.pages.extend(pdf.pages)
    buf = io.BytesIO()
    out.save(buf)
    return buf.getvalue()


def test_layers_judged_lines_answered_in_parts_and_hocr_for_every_page(gateway: Gateway, tmp_path: Path) -> None:
    """Garbled and symbol layers are OCRed with the reason in the page; the good one is taken; include=lines
    gives lines with words and 0..1 boxes, page_from/page_to answer in parts; the hOCR has all three pages."""
    upload = gateway.upload(three_page_pdf(tmp_path), "layers.pdf")
    assert upload.status == 202, upload.body
    job_id = upload.json()["job_id"]
    done = gateway.wait_final(job_id, timeout=240)
    assert done["status"] == "completed", done

    first = gateway.status(job_id, "?include=lines&page_to=2")
    assert first.status == 200, first.body
    answer = first.json()
    assert [p["page"] for p in answer["pages"]] == [1, 2] and answer["next_page_from"] == 3
    garbled, good = answer["pages"]
    assert garbled["method"] == "ocr"
    assert "outside the scripts of the installed languages" in garbled["text_layer_rejected"]
    assert good["method"] == "text_layer" and "text_layer_rejected" not in good
    for page in (garbled, good):
        assert [line["text"].lower() for line in page["lines"]][:1] == [LINES[0].lower()]
        assert all(0 <= v <= 1 for item in page["lines"] + page["words"] for v in item["box"].values())
        assert {w["line"] for w in page["words"]} == set(range(len(page["lines"])))
    assert all(w["confidence"] is None for w in good["words"])
    assert all(w["confidence"] is not None for w in garbled["words"])

    rest = gateway.status(job_id, "?include=lines&page_from=3").json()
    assert [p["page"] for p in rest["pages"]] == [3] and rest["next_page_from"] is None
    assert rest["pages"][0]["method"] == "ocr" and "letters or digits" in rest["pages"][0]["text_layer_rejected"]

    too_many = gateway.status(job_id, "?include=lines&page_from=1&page_to=21")
    assert too_many.status == 400 and too_many.json()["error"]["code"] == "bad_request"

    hocr = gateway.follow_link(answer["outputs"]["hocr"])
    assert hocr.status == 200 and hocr.data.count(b"class='ocr_page'") == 3
