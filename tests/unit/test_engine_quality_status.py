"""status answers in Textract's shape: lines with words, pixel and normalised boxes, layer verdict, pages in parts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.adapters.db import Page
from common.engine.pdf.layer_words import LayerLayout
from common.errors import BadRequest
from common.models import Line, PageResult, Word
from common.rules.page_layout import PAGES_PER_ANSWER, PAGES_PER_ANSWER_WITH_LAYOUT, page_range, stored_layout
from common.rules.status import _page, parse_include
from tests.unit.test_openapi import schema_validator, spec


def stored_page(result: PageResult) -> Page:
    """A page row as jobs.record_page writes it."""
    return Page(page_number=result.number, text=result.text, confidence=result.confidence, method=result.method,
                width=result.width, height=result.height, duration_ms=result.duration_ms, rotation=result.rotation,
                words=result.layout_json())


OCRED = PageResult(
    number=1, text="Total due\n\n12.00", confidence=88.5, method="ocr", width=2000, height=1000, duration_ms=900,
    words=[Word("Total", 90.0, 100, 100, 200, 50, line=0), Word("due", 87.0, 320, 100, 120, 50, line=0),
           Word("12.00", 88.5, 100, 300, 180, 50, line=1)],
    lines=[Line("Total due", 88.5, 100, 100, 340, 50, block=0, paragraph=0),
           Line("12.00", 88.5, 100, 300, 180, 50, block=1, paragraph=1)],
    text_layer_rejected="80% of its letters are outside the scripts of eng (Latin)",
)
LAYERED = PageResult(number=2, text="Hello", confidence=None, method="text_layer", width=2550, height=3300,
                     duration_ms=4, words=[Word("Hello", None, 300, 184, 120, 42, line=0)],
                     lines=[Line("Hello", None, 300, 184, 120, 42, block=0, paragraph=0)])


@pytest.mark.parametrize(("value", "chosen"), [
    ("lines", {"pages", "words", "lines"}), ("words,lines", {"pages", "words", "lines"}), ("words", {"pages", "words"}),
])
def test_lines_come_with_their_words_inside_pages(value: str, chosen: set[str]) -> None:
    """include=lines gives pages, their lines and their words (Textract's shape)."""
    assert parse_include(value) == chosen


def test_a_page_with_lines_has_pixel_and_normalised_boxes_and_validates() -> None:
    """Lines and words carry text, confidence, a pixel box and a 0..1 box; words point at their line; the
    layer verdict is in the page detail; the answer matches the documented Page schema."""
    page = _page(stored_page(OCRED), with_words=True, with_lines=True)
    assert page["text_layer_rejected"].startswith("80% of its letters")
    assert [line["text"] for line in page["lines"]] == ["Total due", "12.00"]
    assert [(line["block"], line["paragraph"]) for line in page["lines"]] == [(0, 0), (1, 1)]
    assert page["lines"][0]["box"] == {"left": 0.05, "top": 0.1, "width": 0.17, "height": 0.05}
    assert [w["line"] for w in page["words"]] == [0, 0, 1]
    assert page["words"][1]["box"] == {"left": 0.16, "top": 0.1, "width": 0.06, "height": 0.05}
    layered = _page(stored_page(LAYERED), with_words=True, with_lines=True)
    assert layered["words"][0]["confidence"] is None and layered["lines"][0]["confidence"] is None
    document = spec()
    for answer in (page, layered):
        schema_validator(document, "Page").validate(answer)
        for item in answer["words"] + answer["lines"]:
            assert all(0 <= value <= 1 for value in item["box"].values())


def test_words_alone_keep_their_former_shape_and_older_rows_still_read() -> None:
    """include=words adds no `box` and no lines; a row written as a bare list of words (before lines) reads."""
    page = _page(stored_page(OCRED), with_words=True)
    assert "lines" not in page and "box" not in page["words"][0] and page["words"][0]["line"] == 0
    older = [{"text": "hello", "confidence": 91.0, "left": 10, "top": 20, "width": 90, "height": 30}]
    row = Page(page_number=1, text="hello", confidence=91.0, method="ocr", width=100, height=100, duration_ms=1,
               rotation=0, words=json.dumps(older))
    assert _page(row, with_words=True)["words"] == older
    assert _page(row, with_words=True, with_lines=True)["lines"] == []
    assert stored_layout(None).words == []


def test_a_page_without_layout_stores_nothing() -> None:
    """A page with no words, lines or verdict leaves the column null, as before."""
    empty = PageResult(number=1, text="", confidence=None, method="ocr", width=10, height=10, duration_ms=1)
    assert empty.layout_json() is None


@pytest.mark.parametrize(("args", "layout", "expected"), [
    ({}, False, (1, PAGES_PER_ANSWER)),
    ({}, True, (1, PAGES_PER_ANSWER_WITH_LAYOUT)),
    ({"page_from": "41"}, True, (41, 40 + PAGES_PER_ANSWER_WITH_LAYOUT)),
    ({"page_from": "3", "page_to": "3"}, True, (3, 3)),
])
def test_pages_are_answered_in_parts(args: dict[str, str], layout: bool, expected: tuple[int, int]) -> None:
    """page_from/page_to choose the pages; by default one answer holds 100 pages, 20 with words or lines."""
    chosen = page_range(args, layout)
    assert (chosen.first, chosen.last) == expected


@pytest.mark.parametrize("args", [{"page_from": "0"}, {"page_from": "x"}, {"page_from": "5", "page_to": "4"},
                                  {"page_from": "1", "page_to": str(PAGES_PER_ANSWER_WITH_LAYOUT + 1)}])
def test_a_bad_page_range_is_a_bad_request(args: dict[str, str]) -> None:
    """A page number below 1, not a number, a reversed range or one over the answer's size is a 400 naming it."""
    with pytest.raises(BadRequest) as info:
        page_range(args, True)
    assert info.value.http_status == 400 and "page" in info.value.message


def test_a_text_layer_hocr_page_has_every_line(tmp_path: Path) -> None:
    """The hOCR written for a text-layer page reads back as the same lines and words."""
    from common.engine import hocr
    from common.engine.pdf.layer_words import write_hocr

    layout = LayerLayout(width=2550, height=3300, dpi=300, words=OCRED.words, lines=OCRED.lines)
    parsed = hocr.parse(write_hocr(layout, 1, tmp_path / "p.hocr").read_bytes())
    assert [line.text for line in parsed.lines] == ["Total due", "12.00"]
    assert parsed.text == "Total due\n\n12.00" and parsed.scan_res == 300
    assert [(w.left, w.top, w.width) for w in parsed.words] == [(w.left, w.top, w.width) for w in OCRED.words]

