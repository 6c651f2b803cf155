"""The OCR engine on generated pages: formats, limits, layers, orientation."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from common.engine.language.installed import validate_lang
from common.engine.ocr import OcrLimits, TesseractEngine
from common.engine.page.analysis import analyse
from common.engine.page.straighten import straightened
from common.errors import CorruptDocument, ImageTooLarge, InvalidLanguage, PdfEncrypted, TooManyPages
from tests.support import render_page, scanned_pdf

LIMITS = OcrLimits(max_pages=5, max_page_pixels=10_000_000, page_timeout=60, dpi=150, workers=2)


def test_language_must_be_installed() -> None:
    """Known languages pass (combined with '+'); an unknown one names what is installed."""
    assert validate_lang("eng") == "eng"
    with pytest.raises(InvalidLanguage) as info:
        validate_lang("eng+klingon")
    assert "eng" in info.value.message


def test_auto_is_a_language_of_its_own() -> None:
    """`auto` passes through for the engine to resolve per page; combined with a language it is refused."""
    assert validate_lang("auto") == "auto"
    with pytest.raises(InvalidLanguage, match="cannot be combined"):
        validate_lang("auto+deu")


def test_multi_page_tiff_yields_every_frame(tmp_path: Path) -> None:
    """Each frame of a multi-page TIFF is a page, in order."""
    pages = [render_page(["TIFF one"]), render_page(["TIFF two"])]
    path = tmp_path / "scan.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    counts: list[int] = []
    results = list(TesseractEngine(LIMITS).recognise(path, "image/tiff", "eng", counts.append))
    assert counts == [2]
    assert [r.number for r in results] == [1, 2]
    assert "one" in results[0].text.lower() and "two" in results[1].text.lower()


def test_pdf_over_the_page_limit_is_refused_before_rendering(tmp_path: Path) -> None:
    """A PDF with more pages than MAX_PAGES fails with too_many_pages naming the limit."""
    path = tmp_path / "long.pdf"
    path.write_bytes(scanned_pdf([["x"]] * 6))
    with pytest.raises(TooManyPages) as info:
        list(TesseractEngine(LIMITS).recognise(path, "application/pdf", "eng", lambda n: None))
    assert "MAX_PAGES" in info.value.message


# Pillow warns on opening such a header; the engine refuses the image before decoding it.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_image_over_the_pixel_limit_is_refused(tmp_path: Path) -> None:
    """An image above MAX_PAGE_PIXELS is refused without OCR."""
    path = tmp_path / "huge.png"
    render_page(["big"], size=(4000, 3000)).save(path)
    with pytest.raises(ImageTooLarge) as info:
        list(TesseractEngine(LIMITS).recognise(path, "image/png", "eng", lambda n: None))
    assert "MAX_PAGE_PIXELS" in info.value.message


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_is_a_corrupt_document(tmp_path: Path, fmt: str) -> None:
    """An image cut short fails with corrupt_document instead of crashing the worker or reading half a page."""
    whole = tmp_path / "whole"
    render_page(["cut"]).save(whole, format=fmt)
    cut = tmp_path / "cut"
    cut.write_bytes(whole.read_bytes()[:2000])
    with pytest.raises(CorruptDocument):
        list(TesseractEngine(LIMITS).recognise(cut, f"image/{fmt.lower()}", "eng", lambda n: None))


def test_mixed_pdf_takes_text_layer_pages_as_is_and_ocrs_scanned_ones(tmp_path: Path) -> None:
    """A page with a text layer is read from it (method text_layer); a scanned page is OCRed (method ocr)."""
    image = tmp_path / "digital.png"
    render_page(["BORN digital page with a real text layer"]).save(image)
    # tesseract's PDF renderer gives a page with an invisible text layer: a stand-in for a born-digital page.
    subprocess.run(["tesseract", str(image), str(tmp_path / "digital"), "pdf"], check=True, capture_output=True)
    (tmp_path / "scanned.pdf").write_bytes(scanned_pdf([["SCANNED page without text"]]))
    mixed = tmp_path / "mixed.pdf"
    subprocess.run(["pdfunite", str(tmp_path / "digital.pdf"), str(tmp_path / "scanned.pdf"), str(mixed)], check=True)

    (tmp_path / "out").mkdir()
    recognition = TesseractEngine(LIMITS).recognise(mixed, "application/pdf", "eng", lambda n: None, tmp_path / "out")
    pages = list(recognition)
    assert [p.method for p in pages] == ["text_layer", "ocr"]
    # The searchable PDF is the original with text laid over its scanned page; both pages have hOCR
    # (the text-layer page's words placed by poppler: issue 14, item 7).
    out = recognition.outputs
    assert out.searchable_pdf is not None and out.hocr is not None
    assert out.hocr.read_bytes().count(b"class='ocr_page'") == 2
    assert "born digital page" in " ".join(pages[0].text.lower().split())
    assert "scanned page" in pages[1].text.lower()
    searchable = subprocess.run(["pdftotext", str(out.searchable_pdf), "-"], check=True,
                                capture_output=True, text=True).stdout.lower()
    assert "born digital page" in " ".join(searchable.split()) and "scanned page" in searchable


# A page turned 270 degrees is read by tesseract's own vertical-line handling, so it needs no turn.
@pytest.mark.parametrize(("turned", "applied"), [(90, 90), (180, 180), (270, 0)])
def test_sideways_or_upside_down_page_is_read_upright(tmp_path: Path, turned: int, applied: int) -> None:
    """A page scanned rotated reads correctly, and the page records the clockwise turn applied."""
    page = render_page(["The quick brown fox jumps over the lazy dog."] * 8)
    path = tmp_path / "turned.png"
    page.rotate(turned, expand=True).save(path)
    [result] = TesseractEngine(LIMITS).recognise(path, "image/png", "eng", lambda n: None)
    assert result.rotation == applied
    assert "quick brown fox" in result.text.lower()
    assert result.confidence is not None and result.confidence > 80


def test_upright_page_pays_no_orientation_check(tmp_path: Path) -> None:
    """A page that reads well is not turned."""
    path = tmp_path / "upright.png"
    render_page(["The quick brown fox jumps over the lazy dog."] * 3).save(path)
    [result] = TesseractEngine(LIMITS).recognise(path, "image/png", "eng", lambda n: None)
    assert result.rotation == 0


def test_wholly_born_digital_pdf_is_its_own_searchable_pdf(tmp_path: Path) -> None:
    """A PDF whose every page has a text layer is read without OCR and kept whole as the searchable PDF."""
    image = tmp_path / "digital.png"
    render_page(["ENTIRELY born digital document text"]).save(image)
    subprocess.run(["tesseract", str(image), str(tmp_path / "digital"), "pdf"], check=True, capture_output=True)
    (tmp_path / "out").mkdir()
    recognition = TesseractEngine(LIMITS).recognise(tmp_path / "digital.pdf", "application/pdf", "eng",
                                                    lambda n: None, tmp_path / "out")
    assert [p.method for p in recognition] == ["text_layer"]
    # Nothing was OCRed, yet the layer's words are placed: the hOCR says where they are (issue 14, item 7).
    assert recognition.outputs.hocr is not None and b"ENTIRELY" in recognition.outputs.hocr.read_bytes()
    assert recognition.outputs.searchable_pdf is not None
    assert recognition.outputs.searchable_pdf.read_bytes() == (tmp_path / "digital.pdf").read_bytes()


def test_password_protected_pdf_is_pdf_encrypted(tmp_path: Path) -> None:
    """A PDF that needs a password fails with pdf_encrypted, not a crash or a generic error."""
    from pypdf import PdfReader, PdfWriter

    plain = tmp_path / "plain.pdf"
    plain.write_bytes(scanned_pdf([["secret"]]))
    writer = PdfWriter()
    for page in PdfReader(plain).pages:
        writer.add_page(page)
    writer.encrypt(user_password="open sesame", algorithm="AES-256")
    locked = tmp_path / "locked.pdf"
    with locked.open("wb") as f:
        writer.write(f)
    with pytest.raises(PdfEncrypted) as info:
        list(TesseractEngine(LIMITS).recognise(locked, "application/pdf", "eng", lambda n: None))
    assert info.value.code == "pdf_encrypted"


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "GIF"])
def test_other_image_formats_are_read(tmp_path: Path, fmt: str) -> None:
    """WebP, BMP and GIF pages are decoded and read like PNG."""
    path = tmp_path / f"page.{fmt.lower()}"
    render_page(["FORMAT check passes"]).save(path, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    [result] = TesseractEngine(LIMITS).recognise(path, f"image/{fmt.lower()}", "eng", lambda n: None)
    assert "format check passes" in result.text.lower()


def test_clean_up_removes_speckles_and_keeps_the_text(tmp_path: Path) -> None:
    """OCR_CLEAN_UP: lone dark pixels go (3x3 median), text stays readable, contrast is stretched."""
    from PIL import Image

    page = render_page(["CLEANED scan reads fine"])
    specks = page.copy()
    for x in range(100, 2400, 37):
        specks.putpixel((x, 1100), 0)  # a row of lone specks below the text
    path = tmp_path / "specks.tif"
    specks.save(path)
    analysis = analyse(path, 300)
    cleaned, geometry = straightened(path, 300, analysis, 0, 0.0, True, tmp_path / "clean.tif")
    with Image.open(cleaned) as im:
        assert im.crop((0, 1090, 2480, 1110)).getextrema() == (255, 255)
        assert im.getextrema() == (0, 255) and im.info["dpi"] == (300, 300)
    assert geometry.angle == 0 and path.exists()
    limits = OcrLimits(max_pages=5, max_page_pixels=10_000_000, page_timeout=60, dpi=300, workers=2, clean_up=True)
    specks.save(path)
    [result] = TesseractEngine(limits).recognise(path, "image/tiff", "eng", lambda n: None)
    assert "cleaned scan reads fine" in result.text.lower()
