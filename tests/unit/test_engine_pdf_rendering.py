"""PDF pages through poppler and qpdf: what is rendered, and what a failure or a hang of either means."""

from __future__ import annotations

from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from common.engine.ocr import OcrLimits, TesseractEngine
from common.engine.pdf.pages import render
from common.errors import CorruptDocument, OcrTimeout
from tests.support import render_page

LIMITS = OcrLimits(max_pages=5, max_page_pixels=10_000_000, page_timeout=60, dpi=150, workers=1)


def scan_pdf(path: Path) -> Path:
    render_page(["Rendered page text"]).save(path, format="PDF", resolution=300)
    return path


def test_a_page_render_over_the_page_timeout_is_ocr_timeout(tmp_path: Path) -> None:
    """pdftoppm is held to OCR_PAGE_TIMEOUT like tesseract, and overrunning it is ocr_timeout, naming the page."""
    limits = OcrLimits(max_pages=5, max_page_pixels=10_000_000, page_timeout=0.001, dpi=150, workers=1)
    with pytest.raises(OcrTimeout) as info:
        render(scan_pdf(tmp_path / "scan.pdf"), 1, tmp_path, limits)
    assert info.value.code == "ocr_timeout" and "rendering page 1" in info.value.message


def test_a_page_poppler_cannot_render_is_a_corrupt_document(tmp_path: Path) -> None:
    """pdftoppm failing on the file is the document's fault: corrupt_document, naming the page."""
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nnot really a pdf\n")
    with pytest.raises(CorruptDocument) as info:
        render(broken, 1, tmp_path, LIMITS)
    assert "page 1" in info.value.message


def test_a_pdf_qpdf_cannot_open_is_a_corrupt_document_before_any_page_count(tmp_path: Path) -> None:
    """The page count comes from the same open as the rest: a damaged file fails before progress is set."""
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 200)
    counts: list[int] = []
    with pytest.raises(CorruptDocument):
        list(TesseractEngine(LIMITS).recognise(broken, "application/pdf", "eng", counts.append))
    assert counts == []


def test_a_page_is_rendered_as_its_crop_box_shows_it(tmp_path: Path) -> None:
    """A media box far larger than the crop box is not rendered: the raster is what a viewer shows, the area the
    page was sized by against MAX_PAGE_PIXELS (a hidden media box cannot smuggle in a huge raster)."""
    path = scan_pdf(tmp_path / "scan.pdf")
    with pikepdf.open(path, allow_overwriting_input=True) as pdf:
        page = pdf.pages[0]
        page.obj.CropBox = list(page.mediabox)
        page.obj.MediaBox = [0, 0, 7200, 7200]  # 100 inches square: 225 megapixels at 150 DPI
        pdf.save(path)
    with Image.open(render(path, 1, tmp_path, LIMITS)) as raster:
        assert raster.size == (1240, 600)  # the 2480 x 1200 scan at 150 DPI
    [result] = TesseractEngine(LIMITS).recognise(path, "application/pdf", "eng", lambda n: None)
    assert (result.width, result.height) == (1240, 600) and "rendered page text" in result.text.lower()
