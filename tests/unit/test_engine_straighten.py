"""Pages are read straight whatever way they lie, the scan stays as scanned, and what was not read is said."""

from __future__ import annotations

import io
import math
import subprocess
import zlib
from pathlib import Path

import pikepdf
import pytest
from PIL import Image, ImageDraw, ImageFont

from common.engine.ocr import OcrLimits, TesseractEngine
from common.engine.page.analysis import analyse
from common.engine.page.checks import ink_in_words, warnings_for
from common.engine.page.straighten import Straightening
from common.engine.recognition import Outputs
from common.models import PageResult, WarningCode, Word
from common.rules.result_warnings import gathered
from tests.unit.test_engine_quality import layered_pdf

LIMITS = OcrLimits(max_pages=5, max_page_pixels=40_000_000, page_timeout=120, dpi=300, workers=2)
PROSE = (
    "The harbour office counted every vessel that arrived in March and recorded its cargo in the ledger. "
    "Grain and timber made up most of the weight, while coal came in smaller ships from the northern ports. "
    "The clerk wrote each entry twice, once for the master and once for the customs house, and signed both. "
    "When the river froze in the first week of the month, barges waited downstream until the ice broke. "
    "Merchants complained about the delay, but the council kept the channel closed for the safety of crews. "
    "By the end of the quarter the total cargo had risen by eleven percent against the same months last year."
).split()


def prose_page(size: tuple[int, int] = (2480, 1800), colour: tuple[int, int, int] | None = None,
               paper: int = 255) -> tuple[Image.Image, list[str]]:
    """A page of prose at 300 DPI (about 11 pt), its words in order."""
    mode = "RGB" if colour else "L"
    image = Image.new(mode, size, (paper,) * 3 if colour else paper)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=46)
    y, line, words = 150, "", []
    for word in PROSE * 2:
        if draw.textlength(f"{line} {word}", font=font) > size[0] - 300:
            draw.text((150, y), line.strip(), font=font, fill=colour or 0)
            words += line.split()
            y, line = y + 70, ""
            if y > size[1] - 150:
                break
        line += f" {word}"
    return image, words


def turned(image: Image.Image, degrees: float) -> Image.Image:
    fill = (255, 255, 255) if image.mode == "RGB" else 255
    return image.rotate(degrees, expand=True, fillcolor=fill, resample=Image.Resampling.BICUBIC)


def recall(text: str, words: list[str]) -> float:
    found = set(text.split())
    return sum(w in found for w in words) / len(words)


def read(path: Path, media_type: str, out: Path) -> tuple[list[PageResult], Outputs]:
    out.mkdir(exist_ok=True)
    recognition = TesseractEngine(LIMITS).recognise(path, media_type, "eng", lambda n: None, out)
    return list(recognition), recognition.outputs


def pdftotext(path: Path | None) -> str:
    assert path is not None
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True, text=True).stdout


def scanned_pdf(image: Image.Image, path: Path, rotate: int = 0) -> Path:
    """One page showing `image` at 300 DPI as a Flate stream (rendered by the engine), with /Rotate."""
    pdf = pikepdf.new()
    grey = image.convert("L")
    stream = pikepdf.Stream(pdf, zlib.compress(grey.tobytes()), Type=pikepdf.Name.XObject,
                            Subtype=pikepdf.Name.Image, Width=grey.width, Height=grey.height,
                            ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=8, Filter=pikepdf.Name.FlateDecode)
    width, height = grey.width * 72 / 300, grey.height * 72 / 300
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, width, height],
        Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=stream)),
        Contents=pikepdf.Stream(pdf, f"q {width} 0 0 {height} 0 0 cm /Im0 Do Q".encode()))
    if rotate:
        page.Rotate = rotate
    pdf.pages.append(pikepdf.Page(page))
    pdf.save(path)
    return path


@pytest.mark.parametrize("degrees", [-10.0, -3.0, 2.0, 3.0, 5.0, 10.0])
def test_a_skewed_image_is_read_whole_and_its_pdf_text_is_the_same(tmp_path: Path, degrees: float) -> None:
    """A page leaning up to 10 degrees either way is read whole; its skew is reported; the searchable PDF keeps
    the JPEG as uploaded, and pdftotext finds in it what the API gives (within 0.02 of its word recall)."""
    page, words = prose_page()
    path = tmp_path / "skewed.jpg"
    turned(page, degrees).save(path, quality=90, dpi=(300, 300))
    [result], outputs = read(path, "image/jpeg", tmp_path / "out")
    assert recall(result.text, words) >= 0.95
    assert abs(result.skew - degrees) <= 0.3 and result.rotation == 0
    assert recall(pdftotext(outputs.searchable_pdf), words) >= recall(result.text, words) - 0.02
    with pikepdf.open(outputs.searchable_pdf) as pdf:
        [image] = list(pdf.pages[0].get_images().values())
        assert image.read_raw_bytes() == path.read_bytes()
    assert result.warnings == []


def test_words_of_a_skewed_page_lie_on_its_scan(tmp_path: Path) -> None:
    """Boxes and polygons are in the scan's own pixels: each polygon follows the lean and covers its ink."""
    page, _ = prose_page()
    scan = turned(page, 4.0)
    path = tmp_path / "skewed.png"
    scan.save(path, dpi=(300, 300))
    [result], _ = read(path, "image/png", tmp_path / "out")
    assert (result.width, result.height) == scan.size
    long_words = [w for w in result.words if len(w.text) >= 6]
    assert len(long_words) >= 20
    for word in long_words:
        assert word.polygon is not None
        (x0, y0), (x1, y1), _, _ = word.polygon
        # Anticlockwise as seen is up to the right: y falls as x grows.
        assert math.degrees(math.atan2(y0 - y1, x1 - x0)) == pytest.approx(4.0, abs=1.0)
        box = scan.crop((word.left, word.top, word.left + word.width, word.top + word.height))
        assert box.getextrema()[0] < 100, f"no ink under {word.text!r}"


def test_a_skewed_scanned_pdf_keeps_its_image_and_gets_level_text(tmp_path: Path) -> None:
    """A rendered PDF page leaning 4 degrees: read whole, its image stream untouched, its text found by pdftotext."""
    page, words = prose_page()
    source = scanned_pdf(turned(page, -4.0), tmp_path / "skewed.pdf")
    [result], outputs = read(source, "application/pdf", tmp_path / "out")
    assert recall(result.text, words) >= 0.95 and result.skew == pytest.approx(-4.0, abs=0.3)
    assert recall(pdftotext(outputs.searchable_pdf), words) >= recall(result.text, words) - 0.02
    with pikepdf.open(source) as before, pikepdf.open(outputs.searchable_pdf) as after:
        assert after.pages[0].Resources.XObject.Im0.read_raw_bytes() == \
            before.pages[0].Resources.XObject.Im0.read_raw_bytes()


@pytest.mark.parametrize("rotate", [0, 90])
def test_a_sideways_skewed_pdf_page_shows_upright_and_its_text_reads(tmp_path: Path, rotate: int) -> None:
    """A page lying on its side (also under a /Rotate of its own) and leaning 3 degrees is read, reports the
    quarter turn it got, gets it as /Rotate so it shows upright, and pdftotext reads its words."""
    page, words = prose_page()
    lying = turned(turned(page, 3.0), 90 + rotate)  # the page's own /Rotate turns it back by `rotate`
    source = scanned_pdf(lying, tmp_path / "sideways.pdf", rotate=rotate)
    [result], outputs = read(source, "application/pdf", tmp_path / "out")
    assert result.rotation == 90 and result.skew == pytest.approx(3.0, abs=0.3)
    assert recall(result.text, words) >= 0.95
    with pikepdf.open(outputs.searchable_pdf) as pdf:
        assert int(pdf.pages[0].obj.get("/Rotate", 0)) == (rotate + 90) % 360
    assert recall(pdftotext(outputs.searchable_pdf), words) >= recall(result.text, words) - 0.02


def test_a_grey_sheet_on_a_white_scanner_bed_is_read(tmp_path: Path) -> None:
    """A grey sheet lying skewed on a white bed at 200 DPI, which tesseract alone reads as nothing, is read."""
    page, words = prose_page(paper=170)
    bed = Image.new("L", (page.width + 300, page.height + 300), 250)
    sheet = page.rotate(2.0, expand=True, fillcolor=0, resample=Image.Resampling.BICUBIC)
    mask = Image.new("L", page.size, 255).rotate(2.0, expand=True, fillcolor=0)
    bed.paste(sheet, (150, 150), mask)
    path = tmp_path / "bed.png"
    bed.resize((bed.width * 2 // 3, bed.height * 2 // 3), Image.Resampling.LANCZOS).save(path, dpi=(200, 200))
    raw = subprocess.run(["tesseract", str(path), "-"], capture_output=True, text=True).stdout
    [result], _ = read(path, "image/png", tmp_path / "out")
    assert recall(result.text, words) >= 0.9 > recall(raw, words) + 0.3


def test_yellow_text_is_read(tmp_path: Path) -> None:
    """Pure yellow print on white, the colour a grey conversion by luminance nearly loses, is read."""
    page, words = prose_page(colour=(255, 255, 0))
    path = tmp_path / "yellow.jpg"
    page.save(path, quality=60, dpi=(300, 300))
    [result], outputs = read(path, "image/jpeg", tmp_path / "out")
    assert recall(result.text, words) >= 0.9
    with pikepdf.open(outputs.searchable_pdf) as pdf:
        [image] = list(pdf.pages[0].get_images().values())
        assert image.read_raw_bytes() == path.read_bytes()  # the colour scan kept, not the grey copy


def test_a_blank_page_says_so(tmp_path: Path) -> None:
    """A white page completes with no text, and says empty_page rather than passing for a read page."""
    path = tmp_path / "blank.png"
    Image.new("L", (2480, 3508), 255).save(path, dpi=(300, 300))
    [result], _ = read(path, "image/png", tmp_path / "out")
    assert result.text.strip() == ""
    assert [w.code for w in result.warnings] == [WarningCode.EMPTY_PAGE]


def test_ink_outside_the_recognised_words_is_warned_of(tmp_path: Path) -> None:
    """A page with one word in twenty recognised (as a 3 degree skew did to tesseract alone) warns of ink
    without text, however confident its few words; with every word found it does not."""
    page, _ = prose_page()
    path = tmp_path / "page.png"
    page.save(path, dpi=(300, 300))
    [result], _ = read(path, "image/png", tmp_path / "out")
    page.save(path, dpi=(300, 300))
    analysis = analyse(path, 300)
    assert ink_in_words(analysis, result.words) >= 0.9
    assert warnings_for(analysis, result.words, 93.0) == []
    few = result.words[::20]
    [warning] = warnings_for(analysis, few, 93.0)
    assert warning.code == WarningCode.INK_WITHOUT_TEXT and "recognised words" in warning.message


def test_low_confidence_is_warned_of() -> None:
    """Words read at a mean confidence under 60 carry low_confidence."""
    words = [Word("word", 40.0, 0, 0, 10, 10)]
    assert [w.code for w in warnings_for(None, words, 40.0)] == [WarningCode.LOW_CONFIDENCE]


def test_a_rejected_text_layer_is_no_longer_found_in_the_searchable_pdf(tmp_path: Path) -> None:
    """A garbled layer rejected and OCRed instead: pdftotext of the searchable PDF gives the OCR's words and
    none of the mojibake, and the page warns text_layer_rejected."""
    lines = ["Quarterly report of the harbour office", "Vessels arrived in March were counted",
             "Cargo weight rose by eleven percent"]
    byte_swapped = {code: code << 8 for code in range(0x21, 0x7F)}
    source = layered_pdf(tmp_path / "cjk.pdf", lines, byte_swapped)
    before = pdftotext(source)
    assert any(ord(ch) > 0x2000 for ch in before)
    [result], outputs = read(source, "application/pdf", tmp_path / "out")
    assert WarningCode.TEXT_LAYER_REJECTED in [w.code for w in result.warnings]
    after = pdftotext(outputs.searchable_pdf)
    assert not any(ord(ch) > 0x2000 for ch in after)
    assert recall(after.lower(), " ".join(lines).lower().split()) >= 0.9


def test_straightening_maps_points_back_onto_the_scan() -> None:
    """A point of the turned raster goes back where PIL took it from, for a lean and for a quarter turn."""
    scan = Image.new("L", (400, 300), 255)
    scan.putpixel((100, 50), 0)
    for angle in (-7.0, -90.0, 183.0):
        read = scan.rotate(angle, expand=True, fillcolor=255)
        ys, xs = zip(*[(y, x) for y in range(read.height) for x in range(read.width) if read.getpixel((x, y)) < 128])
        geometry = Straightening(angle, scan.size, read.size)
        x, y = geometry.to_original(sum(xs) / len(xs), sum(ys) / len(ys))
        assert abs(x - 100) <= 1 and abs(y - 50) <= 1
    assert Straightening(-93.0, (1, 1), (1, 1)).rotation == 90
    assert Straightening(-93.0, (1, 1), (1, 1)).skew == 3.0


def test_a_jobs_warnings_gather_its_pages_by_code() -> None:
    """Page warnings become one job warning per code, naming its pages; the job's own follow with no page."""
    from common.models import ResultWarning
    stored = gathered([(3, '[{"code": "empty_page", "message": "no text"}]'), (1, None),
                       (7, '[{"code": "empty_page", "message": "no text"}, {"code": "low_confidence", "message": "m"}]')],
                      [ResultWarning(WarningCode.PDFA_FALLBACK, "why")])
    assert stored is not None
    import json
    assert json.loads(stored) == [
        {"code": "empty_page", "message": "page 3: no text (and 1 more page)", "pages": [3, 7]},
        {"code": "low_confidence", "message": "page 7: m", "pages": [7]},
        {"code": "pdfa_fallback", "message": "why", "pages": []}]
    assert gathered([(1, None)]) is None
