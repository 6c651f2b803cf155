"""Reading tesseract's hOCR back: reading order, confidence, word boxes; merging pages."""

from __future__ import annotations

from pathlib import Path

from common.engine import hocr

PAGE = b"""<?xml version="1.0" encoding="UTF-8"?>
<html><head><title></title></head>
<body>
 <div class='ocr_page' id='page_1' title='image "/tmp/ocr-pages-x/page-00001.tif"; bbox 0 0 800 600; ppageno 0'>
  <div class='ocr_carea' id='block_1_1' title="bbox 10 10 500 200">
   <p class='ocr_par' id='par_1_1' lang='eng' title="bbox 10 10 500 100">
    <span class='ocr_line' id='line_1_1' title="bbox 10 10 300 40; baseline 0 -5">
     <span class='ocrx_word' id='word_1_1' title='bbox 10 10 100 40; x_wconf 90'>Hello</span>
     <span class='ocrx_word' id='word_1_2' title='bbox 110 10 300 40; x_wconf 80'>R&amp;D&#39;s</span>
    </span>
    <span class='ocr_header' id='line_1_2' title="bbox 10 50 200 90">
     <span class='ocrx_word' id='word_1_3' title='bbox 10 50 200 90; x_wconf 70'>Next</span>
    </span>
   </p>
   <p class='ocr_par' id='par_1_2' lang='eng' title="bbox 10 120 500 200">
    <span class='ocr_line' id='line_1_3' title="bbox 10 120 500 160">
     <span class='ocrx_word' id='word_1_4' title='bbox 10 120 90 160; x_wconf 60'>para</span>
     <span class='ocrx_word' id='word_1_5' title='bbox 95 120 99 160; x_wconf 95'> </span>
    </span>
   </p>
  </div>
 </div>
</body>
</html>
"""


def test_words_join_by_line_and_paragraph_with_boxes_and_confidence() -> None:
    """Words on a line join with spaces, lines with newlines, paragraphs with a blank line; blank words drop."""
    page = hocr.parse(PAGE)
    assert page.text == "Hello R&D's\nNext\n\npara"
    assert page.confidence == 75.0
    assert [w.text for w in page.words] == ["Hello", "R&D's", "Next", "para"]
    assert page.words[1].to_dict() == {"text": "R&D's", "confidence": 80.0, "left": 110, "top": 10,
                                       "width": 190, "height": 30}


def test_page_without_words_has_no_confidence() -> None:
    page = hocr.parse(b"<html><body><div class='ocr_page' title='bbox 0 0 10 10'></div></body></html>")
    assert (page.text, page.confidence, page.words) == ("", None, [])


def test_merge_keeps_every_page_in_order_without_worker_paths(tmp_path: Path) -> None:
    """One document: the head once, each page's block in order, no temporary input paths."""
    parts = []
    for n in (1, 2):
        part = tmp_path / f"page-{n}.hocr"
        part.write_bytes(PAGE.replace(b"Hello", f"Page{n}".encode()))
        parts.append(part)
    out = tmp_path / "merged.hocr"
    hocr.merge(parts, out)
    merged = out.read_bytes()
    assert merged.count(b"<head>") == 1 and merged.count(b"class='ocr_page'") == 2
    assert merged.index(b"Page1") < merged.index(b"Page2")
    assert b"/tmp/" not in merged


def test_the_page_size_is_read_and_none_without_a_page() -> None:
    """The ocr_page's box is the image tesseract read; hOCR without one (leptonica read no image) has no size."""
    assert hocr.parse(PAGE).size == (800, 600)
    empty = b"<html><head><title></title></head>\n<body>\n</body>\n</html>\n"
    assert hocr.parse(empty).size is None
