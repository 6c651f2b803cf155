"""The engine never returns wrong text as right: garbled layers refused, resolution told, no turn on a guess."""

from __future__ import annotations

import io
import random
import re
import zlib
from pathlib import Path

import pikepdf
import pytest
from PIL import Image, ImageDraw, ImageFilter
from structlog.testing import capture_logs

from common.engine import hocr
from common.engine.ocr import OcrLimits, TesseractEngine
from common.engine.page.read import clearly_better
from common.engine.pdf.pages import render
from common.engine.recognition import Outputs
from common.engine.pdf.text_layer import judge
from common.errors import CorruptDocument
from common.models import PageResult, Word
from tests.support import render_page

LIMITS = OcrLimits(max_pages=5, max_page_pixels=10_000_000, page_timeout=120, dpi=300, workers=2)
LINES = ["Quarterly report of the harbour office", "Vessels arrived in March were counted",
         "Cargo weight rose by eleven percent"]


def read(path: Path, media_type: str = "application/pdf", limits: OcrLimits = LIMITS,
         output_dir: Path | None = None) -> tuple[list[PageResult], Outputs | None]:
    if output_dir is not None:
        output_dir.mkdir()
    recognition = TesseractEngine(limits).recognise(path, media_type, "eng", lambda n: None, output_dir)
    pages = list(recognition)
    return pages, recognition.outputs if output_dir is not None else None


def words_of(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def recall(text: str, lines: list[str]) -> float:
    truth = words_of(" ".join(lines))
    return len(truth & words_of(text)) / len(truth)


def image_stream(pdf: pikepdf.Pdf, image: Image.Image) -> pikepdf.Stream:
    """A gray image as a Flate stream: not a JPEG, so the engine renders its page."""
    gray = image.convert("L")
    return pikepdf.Stream(pdf, zlib.compress(gray.tobytes()), Type=pikepdf.Name.XObject,
                          Subtype=pikepdf.Name.Image, Width=gray.width, Height=gray.height,
                          ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=8, Filter=pikepdf.Name.FlateDecode)


def to_unicode(mapping: dict[int, int]) -> bytes:
    """A ToUnicode CMap sending each byte code to the code point given."""
    entries = "\n".join(f"<{code:02X}> <{point:04X}>" for code, point in sorted(mapping.items()))
    return (f"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
            f"/CMapName /Broken def 1 begincodespacerange <00> <FF> endcodespacerange\n"
            f"{len(mapping)} beginbfchar\n{entries}\nendbfchar\nendcmap CMapName currentdict /CMap defineresource pop"
            f" end end").encode()


def layered_pdf(path: Path, layer: list[str], cmap: dict[int, int] | None = None) -> Path:
    """A letter page showing a scan of LINES, with an invisible text layer of `layer` (through `cmap`, if any)."""
    pdf = pikepdf.new()
    font = pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica)
    if cmap is not None:
        font.ToUnicode = pikepdf.Stream(pdf, to_unicode(cmap))
    scan = render_page(LINES, size=(2550, 3300))
    shown = " T* ".join("(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") Tj"
                        for line in layer)
    content = f"q 612 0 0 792 0 0 cm /Im0 Do Q BT 3 Tr /F1 11 Tf 14 TL 72 740 Td {shown} ET".encode()
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, 612, 792],
        Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image_stream(pdf, scan)),
                                     Font=pikepdf.Dictionary(F1=font)),
        Contents=pikepdf.Stream(pdf, content))
    pdf.pages.append(pikepdf.Page(page))
    pdf.save(path)
    return path


# --- 1. garbled text layers -----------------------------------------------------------------------------


def test_a_layer_decoding_to_cjk_is_rejected_and_the_page_ocred(tmp_path: Path) -> None:
    """ASCII read through a broken mapping (U+4D00 for 'M', as UTF-16 read the wrong way round) is mojibake
    for an English request: the page is OCRed and says why its layer was refused."""
    byte_swapped = {code: code << 8 for code in range(0x21, 0x7F)}
    path = layered_pdf(tmp_path / "cjk.pdf", LINES, byte_swapped)
    [page], _ = read(path)
    assert page.method == "ocr"
    assert page.text_layer_rejected is not None and "outside the scripts of eng" in page.text_layer_rejected
    assert recall(page.text, LINES) >= 0.9


def test_a_layer_of_symbols_only_is_rejected(tmp_path: Path) -> None:
    """A Type 3 font without a mapping comes out as punctuation and digits: not text a reader sees."""
    path = layered_pdf(tmp_path / "symbols.pdf", ['"7+%- ,(!# *&$" 7+%-#@! (%)-+*;', '"7+%- #&*" "+%-!@"'])
    [page], _ = read(path)
    assert page.method == "ocr"
    assert page.text_layer_rejected is not None and "letters or digits" in page.text_layer_rejected


def test_a_layer_that_matches_the_page_is_still_taken(tmp_path: Path) -> None:
    """A good English layer is read as the page's text, with no rejection."""
    path = layered_pdf(tmp_path / "good.pdf", LINES)
    [page], _ = read(path)
    assert (page.method, page.text_layer_rejected) == ("text_layer", None)
    assert recall(page.text, LINES) == 1.0


@pytest.mark.parametrize(("text", "lang", "usable"), [
    ("Seite 3 von 12", "eng", False),  # a stamp on a scanned page: too few characters to be a layer at all
    ("Rechnung über 1.200,00 EUR für März, zahlbar bis Ende April", "deu", True),
    ("Счёт на оплату номер 17 от первого марта", "rus", True),
    ("Счёт на оплату номер 17 от первого марта", "eng", False),
    # lang=auto: a script an installed language is written in (Latin here), never one nothing here reads.
    ("Quarterly report of the harbour office, page one", "auto", True),
    ("䴀甀氀琀椀瀀氀攀 猀挀愀渀渀攀搀 瀀愀最攀猀 漀昀 琀栀攀 爀攀瀀漀爀琀", "auto", False),
    ("䴀甀氀琀椀挀漀氀漀爀 瀀爀椀渀琀椀渀最 愀渀搀 琀攀砀琀", "chi_sim", True),
    ("Chapter one ........................................ 5 Chapter two .................... 9", "eng", True),
    ("$%&'()*+,-./0 :;<=>?@ [\\]^_` {|}~ \"#$%&'( )*+,-./", "eng", False),
])
def test_layers_are_judged_by_their_characters(text: str, lang: str, usable: bool) -> None:
    """Scripts of the requested languages (and Latin) count; dot leaders are layout; symbols are not text."""
    assert judge(text, lang).usable is usable


# --- 2. the renderer ------------------------------------------------------------------------------------


def test_a_skewed_scan_keeps_every_line_when_rendered(tmp_path: Path) -> None:
    """A 2.5 degree skewed scan (a Flate image, so the page is rendered, by pdftoppm) loses no line."""
    lines = [f"{n:02d} " + line for n, line in enumerate(LINES * 3)]
    scan = render_page(lines, size=(2550, 1700)).rotate(2.5, expand=True, fillcolor=255,
                                                         resample=Image.Resampling.BICUBIC)
    pdf = pikepdf.new()
    width, height = scan.width * 72 / 300, scan.height * 72 / 300
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, width, height],
        Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image_stream(pdf, scan))),
        Contents=pikepdf.Stream(pdf, f"q {width} 0 0 {height} 0 0 cm /Im0 Do Q".encode()))
    pdf.pages.append(pikepdf.Page(page))
    pdf.save(tmp_path / "skewed.pdf")
    [result], _ = read(tmp_path / "skewed.pdf")
    found = [line for line in lines if line.split()[0] in result.text.split()]
    assert found == lines
    assert recall(result.text, lines) >= 0.95


# --- 3. orientation -------------------------------------------------------------------------------------


def photograph() -> Image.Image:
    """A photo-like picture without any text: a shaded sky and 3,000 small dark strokes and blobs (foliage).

    tesseract's OSD reads this one as upside down, at confidence 2.7 (over MIN_OSD_CONFIDENCE): the guess
    the engine used to act on, turning the user's page.
    """
    rng = random.Random(14)
    image = Image.new("L", (1600, 1200), 200)
    draw = ImageDraw.Draw(image)
    for y in range(1200):
        draw.line([(0, y), (1600, y)], fill=230 - y * 120 // 1200)
    for _ in range(3000):
        x, y = rng.randrange(1600), rng.randrange(1200)
        width, height = rng.randrange(4, 20), rng.randrange(8, 40)
        if rng.random() < 0.5:
            draw.ellipse([x, y, x + width, y + height], fill=rng.randrange(0, 90))
        else:
            draw.line([(x, y), (x + rng.randrange(-20, 20), y + rng.randrange(5, 40))], fill=rng.randrange(0, 90),
                      width=rng.randrange(2, 6))
    return image.filter(ImageFilter.GaussianBlur(0.8))


def test_a_photograph_keeps_its_orientation(tmp_path: Path) -> None:
    """A page with no text is never turned, whatever OSD guesses, and its searchable PDF has no /Rotate."""
    photo = photograph()
    pdf = pikepdf.new()
    width, height = photo.width * 72 / 300, photo.height * 72 / 300
    pdf.pages.append(pikepdf.Page(pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, width, height],
        Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image_stream(pdf, photo))),
        Contents=pikepdf.Stream(pdf, f"q {width} 0 0 {height} 0 0 cm /Im0 Do Q".encode()))))
    path = tmp_path / "photo.pdf"
    pdf.save(path)
    [page], outputs = read(path, output_dir=tmp_path / "out")
    assert page.rotation == 0
    assert outputs is not None and outputs.searchable_pdf is not None
    with pikepdf.open(outputs.searchable_pdf) as pdf:
        assert int(pdf.pages[0].obj.get("/Rotate", 0)) == 0


def test_sideways_text_is_turned_and_read(tmp_path: Path) -> None:
    """Real text turned a quarter is read upright: the turned read beats the first by far."""
    lines = LINES * 3
    path = tmp_path / "sideways.png"
    render_page(lines, size=(2550, 1600)).rotate(90, expand=True).save(path, dpi=(300, 300))
    [page], _ = read(path, "image/png")
    assert page.rotation in (90, 270)
    assert recall(page.text, lines) >= 0.9


def test_a_turn_is_kept_only_when_it_reads_clearly_better() -> None:
    """A photo read at 18 and at 30 after turning, with two short 'words', keeps its orientation; text that
    reads at 90 after turning is turned; a slightly better read is not enough."""
    def page(confidence: float, words: list[tuple[str, float]]) -> hocr.HocrPage:
        return hocr.HocrPage(text=" ".join(w for w, _ in words), confidence=confidence,
                             words=[Word(w, c, 0, 0, 10, 10) for w, c in words])
    photo_first = page(18.0, [("~", 18.0)])
    photo_turned = page(30.0, [("a1", 60.0), ("Il", 40.0)])
    assert not clearly_better(photo_first, photo_turned)
    text_turned = page(90.0, [("harbour", 91.0), ("vessels", 90.0), ("arrived", 89.0), ("counted", 92.0)])
    assert clearly_better(page(35.0, [("lll", 30.0)]), text_turned)
    assert not clearly_better(page(80.0, [("harbour", 80.0)]), text_turned)


# --- 4. resolution --------------------------------------------------------------------------------------


def test_a_jpeg_without_its_own_dpi_reaches_tesseract_at_the_resolution_the_page_gives(tmp_path: Path) -> None:
    """A scanner JPEG with no density, placed at 300 DPI: hOCR's scan_res is 300, not tesseract's guess of 70."""
    scan = render_page(LINES, size=(2550, 1200))
    jpeg = io.BytesIO()
    scan.save(jpeg, format="JPEG", quality=90)  # no dpi: JFIF says aspect ratio only
    pdf = pikepdf.new()
    width, height = 2550 * 72 / 300, 1200 * 72 / 300
    image = pikepdf.Stream(pdf, jpeg.getvalue(), Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image,
                           Width=2550, Height=1200, ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=8,
                           Filter=pikepdf.Name.DCTDecode)
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, width, height],
        Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image)),
        Contents=pikepdf.Stream(pdf, f"q {width} 0 0 {height} 0 0 cm /Im0 Do Q".encode()))
    pdf.pages.append(pikepdf.Page(page))
    pdf.save(tmp_path / "scan.pdf")
    [result], outputs = read(tmp_path / "scan.pdf", output_dir=tmp_path / "out")
    assert outputs is not None and outputs.hocr is not None
    assert "scan_res 300 300" in outputs.hocr.read_text()
    assert hocr.parse(outputs.hocr.read_bytes()).scan_res == 300
    assert recall(result.text, LINES) >= 0.9


# --- 5. huge pages --------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["user unit", "huge media box"])
def test_a_huge_page_is_rendered_at_the_resolution_of_its_scan(tmp_path: Path, how: str) -> None:
    """A 1275x1650 scan on a page of /UserUnit 10, or drawn over a 85x110 inch page: not image_too_large at
    OCR_DPI, but rendered at the scan's own resolution (capped by OCR_DPI) and read."""
    scan = render_page(LINES, size=(1275, 1650))
    pdf = pikepdf.new()
    width, height = (306, 396) if how == "user unit" else (6120, 7920)
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, width, height],
        Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image_stream(pdf, scan))),
        Contents=pikepdf.Stream(pdf, f"q {width} 0 0 {height} 0 0 cm /Im0 Do Q".encode()))
    if how == "user unit":
        page.UserUnit = 10
    pdf.pages.append(pikepdf.Page(page))
    pdf.save(tmp_path / "huge.pdf")
    limits = OcrLimits(max_pages=5, max_page_pixels=4_000_000, page_timeout=120, dpi=300, workers=1)
    [result], _ = read(tmp_path / "huge.pdf", limits=limits)
    assert (result.width, result.height) == (1275, 1650)
    assert recall(result.text, LINES) >= 0.9


# --- 6. tool failures -----------------------------------------------------------------------------------


def test_a_tool_failure_is_one_sentence_and_its_stderr_is_logged(tmp_path: Path) -> None:
    """poppler's repeated 'Syntax Error' lines stay out of the message and go to the log."""
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\n" + b"\x00garbage" * 50)
    with capture_logs() as logs, pytest.raises(CorruptDocument) as info:
        render(broken, 1, tmp_path, LIMITS)
    message = info.value.message
    assert "\n" not in message and "Syntax Error" not in message and "trailer" not in message
    assert message.startswith("page 1 of the PDF is damaged")
    failed = [entry for entry in logs if entry["event"] == "process.failed"]
    assert failed and failed[0]["program"] == "pdftoppm" and "Syntax Error" in failed[0]["stderr"]


def test_a_pdf_qpdf_cannot_open_says_so_in_one_sentence(tmp_path: Path) -> None:
    """qpdf's own words (with the worker's temporary path) are the error's detail, not its message."""
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 200)
    with pytest.raises(CorruptDocument) as info:
        read(broken)
    assert info.value.message == "the PDF is damaged and cannot be read"
    assert info.value.detail and str(tmp_path) not in info.value.message



# --- 7. words for text-layer pages ----------------------------------------------------------------------


def test_a_text_layer_page_has_words_lines_and_hocr(tmp_path: Path) -> None:
    """A born-digital page gets its words placed (pixels at OCR_DPI, no confidence), in lines, and an hOCR page."""
    path = layered_pdf(tmp_path / "good.pdf", LINES)
    [page], outputs = read(path, output_dir=tmp_path / "out")
    assert page.method == "text_layer" and (page.width, page.height) == (2550, 3300)
    assert [line.text for line in page.lines] == LINES
    first = page.words[0]
    assert (first.text, first.confidence, first.line) == ("Quarterly", None, 0)
    assert first.left == 300 and abs(first.top - 184) <= 2  # 72 pt and 44.1 pt from the top, at 300 DPI
    assert {w.line for w in page.words} == {0, 1, 2}
    assert outputs is not None and outputs.hocr is not None
    parsed = hocr.parse(outputs.hocr.read_bytes())
    assert [w.text for w in parsed.words] == [w.text for w in page.words] and parsed.confidence is None
    assert [line.text for line in parsed.lines] == LINES


def test_ocr_words_carry_their_line_and_lines_their_block(tmp_path: Path) -> None:
    """OCRed words point at their line; lines have text, a box, a mean confidence, block and paragraph."""
    path = tmp_path / "scan.png"
    render_page(LINES).save(path, dpi=(300, 300))
    [page], _ = read(path, "image/png")
    assert [line.text for line in page.lines] == LINES
    assert all(line.confidence is not None and line.confidence > 50 for line in page.lines)
    assert [w.line for w in page.words] == [i for i, line in enumerate(LINES) for _ in line.split()]
    assert all(line.width > 0 and line.height > 0 for line in page.lines)
    blocks = [line.block for line in page.lines]
    assert blocks == sorted(blocks) and blocks[0] == 0
