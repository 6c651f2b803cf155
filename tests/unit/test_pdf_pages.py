"""Scanned PDF pages: which are read from their stored JPEG, and the searchable PDF laid over the original."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from common.engine.ocr import OcrLimits, TesseractEngine
from common.engine.pdf.document import PdfDocument
from common.engine.pdf.pages import readable_jpegs
from common.engine.recognition import Outputs
from common.errors import ImageTooLarge
from common.models import PageResult
from tests.support import render_page

LIMITS = OcrLimits(max_pages=5, max_page_pixels=10_000_000, page_timeout=60, dpi=300, workers=2)
POINTS_PER_PIXEL = 72 / 300  # the test pages are stored at 300 DPI


def pdf_of(image: Image.Image, path: Path) -> Path:
    image.save(path, format="PDF", resolution=300)  # Pillow stores gray and RGB pages as JPEG
    return path


def ocr(path: Path, limits: OcrLimits = LIMITS) -> list[PageResult]:
    return list(TesseractEngine(limits).recognise(path, "application/pdf", "eng", lambda n: None))


def ocr_with_outputs(path: Path, output_dir: Path, media_type: str = "application/pdf"
                     ) -> tuple[list[PageResult], Outputs]:
    output_dir.mkdir()
    recognition = TesseractEngine(LIMITS).recognise(path, media_type, "eng", lambda n: None, output_dir)
    return list(recognition), recognition.outputs


def pdftotext(path: Path, *args: str) -> str:
    return subprocess.run(["pdftotext", *args, str(path), "-"], check=True, capture_output=True, text=True).stdout


def test_scanner_page_is_read_from_its_jpeg_at_its_resolution(tmp_path: Path) -> None:
    """One JPEG covering the page: found, with the resolution the page gives it."""
    path = pdf_of(render_page(["Plain scanner page"]), tmp_path / "scan.pdf")
    with PdfDocument(path) as pdf:
        [(number, jpeg)] = pdf.whole_page_jpegs([1]).items()
        assert (number, jpeg.dpi) == (1, 300)
        pdf.write_jpeg(jpeg, tmp_path / "page.jpg")
    with Image.open(tmp_path / "page.jpg") as stored:
        assert (stored.format, stored.size) == ("JPEG", (2480, 1200))


def test_anything_drawn_over_the_scan_makes_the_page_rendered(tmp_path: Path) -> None:
    """A black box over a line (a redaction) keeps that line out of the text: the page is rendered, not
    read from the JPEG underneath."""
    path = pdf_of(render_page(["PUBLIC words stay", "SECRET account 12345"]), tmp_path / "scan.pdf")
    with pikepdf.open(path, allow_overwriting_input=True) as pdf:
        # Line two sits 310-380 px from the top of a 1200 px page: cover it in points from the bottom.
        pdf.pages[0].contents_add(b"q 0 g 0 190 595.2 30 re f Q", prepend=False)
        pdf.save(path)
    with PdfDocument(path) as pdf:
        assert pdf.whole_page_jpegs([1]) == {}
    [page] = ocr(path)
    assert "public words" in page.text.lower()
    assert "secret" not in page.text.lower() and "12345" not in page.text


def test_scan_finer_than_ocr_dpi_is_rendered_at_ocr_dpi(tmp_path: Path) -> None:
    """A 300 DPI scan under OCR_DPI=150 is rendered at 150: fewer pixels to read than the stored JPEG."""
    path = pdf_of(render_page(["Fine scan"]), tmp_path / "scan.pdf")
    limits = OcrLimits(max_pages=5, max_page_pixels=10_000_000, page_timeout=60, dpi=150, workers=2)
    with PdfDocument(path) as pdf:
        assert readable_jpegs(pdf, [1], limits) == {}
        assert readable_jpegs(pdf, [1], LIMITS) != {}
    [page] = ocr(path, limits=limits)
    assert (page.width, page.height) == (1240, 600) and "fine scan" in page.text.lower()


def test_page_too_large_to_render_is_refused_before_rendering(tmp_path: Path) -> None:
    """A page 200 inches square would be a 3.6 gigapixel raster at 300 DPI: image_too_large, naming the limit."""
    path = pdf_of(render_page(["Huge page"]), tmp_path / "scan.pdf")
    with pikepdf.open(path, allow_overwriting_input=True) as pdf:
        pdf.pages[0].obj.MediaBox = [0, 0, 14400, 14400]
        pdf.save(path)
    with pytest.raises(ImageTooLarge) as info:
        ocr(path)
    assert "MAX_PAGE_PIXELS" in info.value.message and "page 1" in info.value.message


def test_rotated_or_annotated_pages_are_rendered(tmp_path: Path) -> None:
    """A viewer turns a /Rotate page and draws annotations over it: the stored JPEG is not what it shows."""
    path = pdf_of(render_page(["Turned page"]), tmp_path / "scan.pdf")
    with pikepdf.open(path, allow_overwriting_input=True) as pdf:
        pdf.pages.append(pdf.pages[0])
        pdf.pages[0].obj.Rotate = 90
        pdf.pages[1].obj.Annots = pdf.make_indirect(pikepdf.Array([pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Square, Rect=[10, 10, 100, 100])]))
        pdf.save(path)
    with PdfDocument(path) as pdf:
        assert pdf.whole_page_jpegs([1, 2]) == {}


def test_searchable_pdf_keeps_the_original_image_and_adds_aligned_text(tmp_path: Path) -> None:
    """The scan's JPEG is carried over byte for byte (colour kept); the invisible words sit on the printed ones."""
    colour = render_page(["Invoice 2041 from ACME"]).convert("RGB")
    path = pdf_of(colour, tmp_path / "scan.pdf")
    [page], outputs = ocr_with_outputs(path, tmp_path / "out")
    searchable = outputs.searchable_pdf
    assert searchable is not None
    with pikepdf.open(path) as before, pikepdf.open(searchable) as after:
        [(_, original)] = before.pages[0].get_images().items()
        [(_, kept)] = after.pages[0].get_images().items()
        assert kept.read_raw_bytes() == original.read_raw_bytes()
        assert kept.ColorSpace == "/DeviceRGB"
    assert "invoice 2041" in pdftotext(searchable).lower()
    word = next(w for w in page.words if w.text == "Invoice")
    box = re.search(r'xMin="([\d.]+)" yMin="([\d.]+)"[^>]*>Invoice<', pdftotext(searchable, "-bbox"))
    assert box is not None
    assert abs(float(box.group(1)) - word.left * POINTS_PER_PIXEL) < 3
    assert abs(float(box.group(2)) - word.top * POINTS_PER_PIXEL) < 6


def test_sideways_scan_comes_out_upright_with_its_text(tmp_path: Path) -> None:
    """A page scanned sideways is read after turning it, and the searchable PDF shows it upright."""
    sideways = render_page(["The quick brown fox jumps over the lazy dog."] * 8).rotate(90, expand=True)
    path = pdf_of(sideways, tmp_path / "scan.pdf")
    [page], outputs = ocr_with_outputs(path, tmp_path / "out")
    assert page.rotation == 90 and "quick brown fox" in page.text.lower()
    searchable = outputs.searchable_pdf
    assert searchable is not None
    with pikepdf.open(searchable) as pdf:
        assert int(pdf.pages[0].obj.Rotate) == 90
    # What a viewer shows reads upright without any turn, and the text layer says the same.
    shown = subprocess.run(["pdftoppm", "-r", "100", "-gray", str(searchable)], check=True, capture_output=True).stdout
    upright = tmp_path / "shown.pgm"
    Image.open(io.BytesIO(shown)).save(upright)
    read = subprocess.run(["tesseract", str(upright), "-"], check=True, capture_output=True, text=True).stdout
    assert "quick brown fox" in read.lower()
    assert "quick brown fox" in " ".join(pdftotext(searchable).lower().split())


def test_uploaded_jpeg_is_embedded_as_uploaded(tmp_path: Path) -> None:
    """A JPEG photo of a page goes into its searchable PDF byte for byte, at the paper's size."""
    path = tmp_path / "photo.jpg"
    render_page(["Photographed receipt 77"]).convert("RGB").save(path, format="JPEG", quality=90, dpi=(200, 200))
    [page], outputs = ocr_with_outputs(path, tmp_path / "out", "image/jpeg")
    assert "photographed receipt 77" in page.text.lower() and outputs.searchable_pdf is not None
    with pikepdf.open(outputs.searchable_pdf) as pdf:
        [(_, image)] = pdf.pages[0].get_images().items()
        assert image.read_raw_bytes() == path.read_bytes()
        box = pikepdf.Rectangle(pdf.pages[0].mediabox)
        assert (round(box.width), round(box.height)) == (round(2480 * 72 / 200), round(1200 * 72 / 200))


def test_sideways_jpeg_is_turned_by_its_exif_tag(tmp_path: Path) -> None:
    """A camera JPEG tagged 'rotate 90' is turned before OCR (so not passed on as uploaded)."""
    path = tmp_path / "tagged.jpg"
    sideways = render_page(["Tagged photo reads upright"]).rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90 degrees anticlockwise: viewers turn it back clockwise
    sideways.save(path, format="JPEG", quality=90, exif=exif)
    [page] = TesseractEngine(LIMITS).recognise(path, "image/jpeg", "eng", lambda n: None)
    assert "tagged photo reads upright" in page.text.lower() and page.rotation == 0
