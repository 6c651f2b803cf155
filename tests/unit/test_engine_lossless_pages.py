"""Scanned PDF pages stored losslessly (Flate, unfiltered, CCITT G4): read from their one image as stored,
like JPEG pages; anything a viewer would show differently from the image's samples is rendered."""

from __future__ import annotations

import io
import re
import struct
import subprocess
import zlib
from pathlib import Path

import pikepdf
import pytest
from PIL import Image, ImageOps, ImageStat

from common.engine.pdf import jbig2

from common.engine.pdf import pages as pdf_pages
from common.engine.ocr import OcrLimits, TesseractEngine
from common.engine.pdf.document import PageLossless, PdfDocument
from common.engine.recognition import Outputs
from common.models import PageResult
from tests.support import render_page

LIMITS = OcrLimits(max_pages=5, max_page_pixels=10_000_000, page_timeout=60, dpi=300, workers=2)
POINTS_PER_PIXEL = 72 / 300  # the test pages are stored at 300 DPI
LINES = ["Lossless scan 4471 reads well"]
WORDS = "lossless scan 4471 reads well"


def one_image_pdf(path: Path, data: bytes, size: tuple[int, int], extra_drawing: bytes = b"",
                  **image_keys: object) -> Path:
    """A page that is one image at 300 DPI covering it exactly, as a scanner writes it."""
    width, height = size
    points = (width * POINTS_PER_PIXEL, height * POINTS_PER_PIXEL)
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=points)
    image = pikepdf.Stream(pdf, data)
    image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    image.Width, image.Height = width, height
    for key, value in image_keys.items():
        image[f"/{key}"] = value
    page = pdf.pages[0]
    page.obj.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
    page.obj.Contents = pdf.make_stream(b"q %.4f 0 0 %.4f 0 0 cm /Im0 Do Q" % points + extra_drawing)
    pdf.save(path, compress_streams=False)  # an unfiltered image stays unfiltered: qpdf would Flate it
    return path


def flate_gray(path: Path, lines: list[str] = LINES, **keys: object) -> Path:
    page = render_page(lines)
    return one_image_pdf(path, zlib.compress(page.tobytes()), page.size, ColorSpace=pikepdf.Name.DeviceGray,
                         BitsPerComponent=8, Filter=pikepdf.Name.FlateDecode, **keys)


def bilevel(lines: list[str] = LINES) -> Image.Image:
    return render_page(lines).point(lambda v: 255 if v > 128 else 0).convert("1")


def g4_stream(page: Image.Image) -> tuple[bytes, bool]:
    """Pillow's group 4 data for a 1-bit page (one strip) and whether it codes black as 1 (its photometry)."""
    buf = io.BytesIO()
    page.save(buf, format="TIFF", compression="group4", strip_size=1 << 30)
    with Image.open(buf) as tiff:
        [offset], [length] = tiff.tag_v2[273], tiff.tag_v2[279]
        black_is_1 = tiff.tag_v2[262] == 1  # MinIsBlack: the coder's "white" runs are 0 bits, i.e. black
    return buf.getvalue()[offset:offset + length], black_is_1


def route(path: Path, limits: OcrLimits = LIMITS) -> str:
    with PdfDocument(path) as pdf:
        return pdf_pages.plan_pages(path, pdf, 1, limits).route(1)


def ocr(path: Path) -> PageResult:
    [page] = TesseractEngine(LIMITS).recognise(path, "application/pdf", "eng", lambda n: None)
    return page


def text(page: PageResult) -> str:
    return " ".join(page.text.lower().split())


def shown_brightness(path: Path) -> float:
    """Mean gray of the page as poppler shows it: near 255 for dark text on a white page."""
    shown = subprocess.run(["pdftoppm", "-r", "50", "-gray", str(path)], check=True, capture_output=True).stdout
    return float(ImageStat.Stat(Image.open(io.BytesIO(shown))).mean[0])


@pytest.fixture
def no_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stored route must not render: any pdftoppm call from the page planner fails the test."""
    def refuse(*args: object, **kwargs: object) -> Path:
        raise AssertionError("the page was rendered")
    monkeypatch.setattr(pdf_pages, "render", refuse)


def g3_stream(page: Image.Image, t4_options: int) -> tuple[bytes, bool]:
    """Pillow's (libtiff's) group 3 data for a 1-bit page: every row led by an end-of-line code; T4Options
    bit 0 codes rows 2-D. Whether it codes black as 1, as for g4_stream."""
    buf = io.BytesIO()
    page.save(buf, format="TIFF", compression="group3", strip_size=1 << 30, tiffinfo={292: t4_options})
    with Image.open(buf) as tiff:
        [offset], [length] = tiff.tag_v2[273], tiff.tag_v2[279]
        black_is_1 = tiff.tag_v2[262] == 1
    return buf.getvalue()[offset:offset + length], black_is_1


def predicted_rows(data: bytes, row: int) -> bytes:
    """Rows of `row` bytes each led by PNG's filter byte 0 (None): a Flate /Predictor 15 stream's samples."""
    return b"".join(b"\0" + data[i:i + row] for i in range(0, len(data), row))


def indexed(space: list[object], indices: bytes, size: tuple[int, int], path: Path, bits: int = 8,
            **keys: object) -> Path:
    return one_image_pdf(path, zlib.compress(indices), size, BitsPerComponent=bits, Filter=pikepdf.Name.FlateDecode,
                         ColorSpace=pikepdf.Array([pikepdf.Name.Indexed, *space]), **keys)


def stored_cases(tmp_path: Path) -> dict[str, Path]:
    page = render_page(LINES)
    colour = page.convert("RGB")
    bw = bilevel()
    g4, black_is_1 = g4_stream(bw)
    predicted = predicted_rows(page.tobytes(), page.width)
    # Index 255 - gray: the samples alone would show light text on black, the palette turns them back.
    reversed_gray = bytes(255 - v for v in page.tobytes())
    tinted = pikepdf.String(b"".join(bytes((255 - j, 255 - j, max(0, 235 - j))) for j in range(256)))
    # 4-bit indices into 16 grays (15 - gray // 16), two to a byte; rows led by PNG's filter byte.
    nibbles = [15 - v // 16 for v in page.tobytes()]
    packed = bytes(nibbles[i] << 4 | nibbles[i + 1] for i in range(0, len(nibbles), 2))
    sixteen_grays = pikepdf.String(bytes(255 - j * 17 for j in range(16)))
    g3_1d, g3_black_is_1 = g3_stream(bw, 0)
    g3_2d, _ = g3_stream(bw, 1)
    return {
        "flate gray": flate_gray(tmp_path / "gray.pdf"),
        "flate gray, PNG predictor": one_image_pdf(
            tmp_path / "predicted.pdf", zlib.compress(predicted), page.size, ColorSpace=pikepdf.Name.DeviceGray,
            BitsPerComponent=8, Filter=pikepdf.Name.FlateDecode,
            DecodeParms=pikepdf.Dictionary(Predictor=15, Colors=1, BitsPerComponent=8, Columns=page.width)),
        "unfiltered gray": one_image_pdf(tmp_path / "raw.pdf", page.tobytes(), page.size,
                                         ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=8),
        "flate rgb": one_image_pdf(tmp_path / "rgb.pdf", zlib.compress(colour.tobytes()), page.size,
                                   ColorSpace=pikepdf.Name.DeviceRGB, BitsPerComponent=8,
                                   Filter=pikepdf.Name.FlateDecode),
        "flate rgb, PNG predictor": one_image_pdf(
            tmp_path / "rgb-predicted.pdf", zlib.compress(predicted_rows(colour.tobytes(), 3 * page.width)), page.size,
            ColorSpace=pikepdf.Name.DeviceRGB, BitsPerComponent=8, Filter=pikepdf.Name.FlateDecode,
            DecodeParms=pikepdf.Dictionary(Predictor=15, Colors=3, BitsPerComponent=8, Columns=page.width)),
        # Pillow's mode "1" bytes are PDF's: 1 is white.
        "flate 1-bit": one_image_pdf(tmp_path / "bw.pdf", zlib.compress(bw.tobytes()), bw.size,
                                     ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=1,
                                     Filter=pikepdf.Name.FlateDecode),
        "flate 1-bit, /Decode [1 0]": one_image_pdf(
            tmp_path / "bw-inverted.pdf", zlib.compress(bytes(255 - v for v in bw.tobytes())), bw.size,
            ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=1, Filter=pikepdf.Name.FlateDecode,
            Decode=pikepdf.Array([1, 0])),
        "ccitt g4": one_image_pdf(
            tmp_path / "g4.pdf", g4, bw.size, ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=1,
            Filter=pikepdf.Name.CCITTFaxDecode,
            DecodeParms=pikepdf.Dictionary(K=-1, Columns=bw.width, Rows=bw.height, BlackIs1=black_is_1)),
        # The other /BlackIs1 swaps the decoded bits; /Decode [1 0] swaps them back: the same page shown.
        "ccitt g4, /BlackIs1 swapped by /Decode [1 0]": one_image_pdf(
            tmp_path / "g4-decode.pdf", g4, bw.size, ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=1,
            Filter=pikepdf.Name.CCITTFaxDecode, Decode=pikepdf.Array([1, 0]),
            DecodeParms=pikepdf.Dictionary(K=-1, Columns=bw.width, Rows=bw.height, BlackIs1=not black_is_1)),
        "indexed over RGB, 8-bit": indexed([pikepdf.Name.DeviceRGB, 255, tinted], reversed_gray, page.size,
                                           tmp_path / "indexed-rgb.pdf"),
        "indexed over gray, 4-bit, PNG predictor": indexed(
            [pikepdf.Name.DeviceGray, 15, sixteen_grays], predicted_rows(packed, page.width // 2), page.size,
            tmp_path / "indexed-gray.pdf", bits=4,
            DecodeParms=pikepdf.Dictionary(Predictor=15, Colors=1, BitsPerComponent=4, Columns=page.width)),
        # Two entries: 0 white, 1 black, the reverse of a 1-bit gray image's samples.
        "indexed over RGB, 1-bit": indexed([pikepdf.Name.DeviceRGB, 1, pikepdf.String(b"\xff\xff\xff\0\0\0")],
                                           bytes(255 - v for v in bw.tobytes()), bw.size,
                                           tmp_path / "indexed-1bit.pdf", bits=1),
        "ccitt g3 1-D": one_image_pdf(
            tmp_path / "g3.pdf", g3_1d, bw.size, ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=1,
            Filter=pikepdf.Name.CCITTFaxDecode,
            DecodeParms=pikepdf.Dictionary(K=0, EndOfLine=True, Columns=bw.width, Rows=bw.height,
                                           BlackIs1=g3_black_is_1)),
        "ccitt g3 2-D": one_image_pdf(
            tmp_path / "g3-2d.pdf", g3_2d, bw.size, ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=1,
            Filter=pikepdf.Name.CCITTFaxDecode,
            DecodeParms=pikepdf.Dictionary(K=1, EndOfLine=True, Columns=bw.width, Rows=bw.height,
                                           BlackIs1=g3_black_is_1)),
    }


# Flate streams with PNG predictors are passed on as a PNG; the rest as TIFFs.
SUFFIXES = {"flate gray, PNG predictor": ".png", "flate rgb, PNG predictor": ".png",
            "indexed over gray, 4-bit, PNG predictor": ".png"}


def poppler_render(path: Path, mode: str) -> Image.Image:
    """Page 1 as poppler renders it at the scan's 300 DPI: what a viewer shows. Its cairo backend draws
    an image at 1:1 sample for sample; pdftoppm's Splash smooths glyph edges even then."""
    shown = subprocess.run(["pdftocairo", "-r", "300", "-png", *(["-gray"] if mode == "L" else []), "-singlefile",
                            str(path), "-"], check=True, capture_output=True).stdout
    return Image.open(io.BytesIO(shown)).convert(mode)


def tesseract_input(image: Path, folder: Path) -> Image.Image:
    """The binary image tesseract recognised in `image`, as leptonica read it (tessedit_write_images)."""
    subprocess.run(["tesseract", str(image), str(folder / "seen"), "--psm", "6", "-c", "tessedit_write_images=1"],
                   check=True, capture_output=True)
    with Image.open(folder / "seen.processed.tif") as seen:
        return seen.convert("L")


KINDS = {"flate gray": "gray", "flate gray, PNG predictor": "gray", "unfiltered gray": "gray", "flate rgb": "rgb",
         "flate rgb, PNG predictor": "rgb",
         "flate 1-bit": "bilevel", "flate 1-bit, /Decode [1 0]": "bilevel", "ccitt g4": "ccitt",
         "ccitt g4, /BlackIs1 swapped by /Decode [1 0]": "ccitt", "indexed over RGB, 8-bit": "indexed",
         "indexed over gray, 4-bit, PNG predictor": "indexed", "indexed over RGB, 1-bit": "indexed",
         "ccitt g3 1-D": "ccitt", "ccitt g3 2-D": "ccitt"}


@pytest.mark.parametrize("case", list(KINDS))
def test_lossless_page_is_read_as_stored(tmp_path: Path, case: str, no_rendering: None) -> None:
    """Each lossless kind: planned as stored, written as what a viewer shows, read without rendering."""
    path = stored_cases(tmp_path)[case]
    assert shown_brightness(path) > 200  # the fixture itself shows dark text on white
    assert route(path) == "lossless"
    with PdfDocument(path) as pdf:
        [(number, image)] = pdf.whole_page_images([1]).items()
        assert isinstance(image, PageLossless)
        assert (number, image.kind, image.dpi, image.width, image.height) == (1, KINDS[case], 300, 2480, 1200)
        written = pdf.write_lossless(image, tmp_path / "page.tif")
    assert written is not None and written.suffix == SUFFIXES.get(case, ".tif")
    with Image.open(written) as stored:
        assert stored.size == (2480, 1200)
        # What tesseract is given is what poppler shows, pixel for pixel.
        mode = "RGB" if image.kind in ("rgb", "indexed") else "L"
        assert stored.convert(mode).tobytes() == poppler_render(path, mode).tobytes()
    if image.kind in ("bilevel", "indexed"):
        # leptonica keeps 1-bit samples as 1 = black: the TIFF's photometry must turn them as PDF does;
        # tesseract takes a palette image's colours, not its indices.
        assert ImageStat.Stat(tesseract_input(written, tmp_path)).mean[0] > 200
    page = ocr(path)
    assert WORDS in text(page) and (page.width, page.height) == (2480, 1200)
    assert page.confidence is not None and page.confidence > 80


def unplain_cases(tmp_path: Path) -> dict[str, Path]:
    bw = bilevel()
    page = render_page(LINES)
    cases = {
        # A stencil: its 0 bits paint the fill colour (black here); not a picture of the page.
        "/ImageMask": one_image_pdf(tmp_path / "mask.pdf", zlib.compress(bw.tobytes()), bw.size,
                                    ImageMask=True, BitsPerComponent=1, Filter=pikepdf.Name.FlateDecode),
        "/Rotate 90": flate_gray(tmp_path / "rotate.pdf"),
        "a second drawing operator": one_image_pdf(
            tmp_path / "drawn.pdf", zlib.compress(page.tobytes()), page.size,
            extra_drawing=b" q 0 g 500 250 20 20 re f Q", ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=8,
            Filter=pikepdf.Name.FlateDecode),
        "/SMask": flate_gray(tmp_path / "smask.pdf"),
        # A /Decode over indices remaps them before the lookup: no TIFF or PNG palette says that.
        "indexed with /Decode [255 0]": indexed(
            [pikepdf.Name.DeviceGray, 255, pikepdf.String(bytes(range(256)))], bytes(255 - v for v in page.tobytes()),
            page.size, tmp_path / "indexed-decode.pdf", Decode=pikepdf.Array([255, 0])),
        # CMYK entries need converting, as a CMYK image would.
        "indexed over CMYK": indexed(
            [pikepdf.Name.DeviceCMYK, 255, pikepdf.String(b"".join(bytes((0, 0, 0, j)) for j in range(256)))],
            bytes(255 - v for v in page.tobytes()), page.size, tmp_path / "indexed-cmyk.pdf"),
    }
    with pikepdf.open(cases["/Rotate 90"], allow_overwriting_input=True) as pdf:
        pdf.pages[0].obj.Rotate = 90
        pdf.save(cases["/Rotate 90"])
    with pikepdf.open(cases["/SMask"], allow_overwriting_input=True) as pdf:
        alpha = pikepdf.Stream(pdf, zlib.compress(bytes([255]) * page.width * page.height))
        alpha.Type, alpha.Subtype, alpha.Width, alpha.Height = (pikepdf.Name.XObject, pikepdf.Name.Image,
                                                                page.width, page.height)
        alpha.ColorSpace, alpha.BitsPerComponent, alpha.Filter = (pikepdf.Name.DeviceGray, 8,
                                                                  pikepdf.Name.FlateDecode)
        pdf.pages[0].Resources.XObject.Im0.SMask = alpha
        pdf.save(cases["/SMask"])
    return cases


@pytest.mark.parametrize("case", ["/ImageMask", "/Rotate 90", "a second drawing operator", "/SMask",
                                  "indexed with /Decode [255 0]", "indexed over CMYK"])
def test_pages_not_plainly_one_image_are_rendered(tmp_path: Path, case: str) -> None:
    """Masks, a turned page or anything drawn besides the image: what a viewer shows is not the samples."""
    path = unplain_cases(tmp_path)[case]
    assert route(path) == "render"
    with PdfDocument(path) as pdf:
        assert pdf.whole_page_images([1]) == {}
    page = ocr(path)
    assert WORDS in text(page)


def test_jbig2_without_jbig2dec_and_group3_pages_are_rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """JBIG2 needs jbig2dec, and a G3 stream without /EndOfLine may lack the end-of-line codes TIFF readers
    sync on (byte-aligned rows are not TIFF's fill bits): planned for rendering (only the plan is checked;
    the streams here are placeholders)."""
    monkeypatch.setattr(jbig2, "available", lambda: False)
    jbig2_page = one_image_pdf(tmp_path / "jbig2.pdf", b"\0" * 16, (2480, 1200), ColorSpace=pikepdf.Name.DeviceGray,
                          BitsPerComponent=1, Filter=pikepdf.Name.JBIG2Decode)
    g3 = one_image_pdf(tmp_path / "g3.pdf", b"\0" * 16, (2480, 1200), ColorSpace=pikepdf.Name.DeviceGray,
                       BitsPerComponent=1, Filter=pikepdf.Name.CCITTFaxDecode,
                       DecodeParms=pikepdf.Dictionary(K=0, Columns=2480, Rows=1200))
    aligned = one_image_pdf(tmp_path / "g3-aligned.pdf", b"\0" * 16, (2480, 1200),
                            ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=1, Filter=pikepdf.Name.CCITTFaxDecode,
                            DecodeParms=pikepdf.Dictionary(K=0, EndOfLine=True, EncodedByteAlign=True,
                                                           Columns=2480, Rows=1200))
    for path in (jbig2_page, g3, aligned):
        with PdfDocument(path) as pdf:
            assert pdf.whole_page_images([1]) == {}


def test_jpeg_pages_still_take_the_jpeg_route(tmp_path: Path) -> None:
    path = tmp_path / "jpeg.pdf"
    render_page(LINES).save(path, format="PDF", resolution=300)  # Pillow stores gray pages as JPEG
    assert route(path) == "jpeg"
    with PdfDocument(path) as pdf:
        assert list(pdf.whole_page_jpegs([1])) == [1]
    assert WORDS in text(ocr(path))


def test_lossless_scan_finer_than_ocr_dpi_is_rendered(tmp_path: Path) -> None:
    """As for JPEGs: a 300 DPI scan under OCR_DPI=150 is rendered at 150, a quarter of the pixels."""
    limits = OcrLimits(max_pages=5, max_page_pixels=10_000_000, page_timeout=60, dpi=150, workers=2)
    assert route(flate_gray(tmp_path / "gray.pdf"), limits) == "render"


def truncated_cases(tmp_path: Path) -> dict[str, Path]:
    page = render_page(LINES)
    predicted = b"".join(b"\0" + page.tobytes()[row * page.width:(row + 1) * page.width] for row in range(page.height))
    flate, png = zlib.compress(page.tobytes()), zlib.compress(predicted)
    gray = {"ColorSpace": pikepdf.Name.DeviceGray, "BitsPerComponent": 8}
    return {
        "flate": one_image_pdf(tmp_path / "short.pdf", flate[: len(flate) // 3], page.size,
                               Filter=pikepdf.Name.FlateDecode, **gray),
        "flate, PNG predictor": one_image_pdf(
            tmp_path / "short-predicted.pdf", png[: len(png) // 3], page.size, Filter=pikepdf.Name.FlateDecode,
            DecodeParms=pikepdf.Dictionary(Predictor=15, Colors=1, BitsPerComponent=8, Columns=page.width), **gray),
        "unfiltered": one_image_pdf(tmp_path / "short-raw.pdf", page.tobytes()[: page.width * 400], page.size,
                                    **gray),
    }


@pytest.mark.parametrize("case", ["flate", "flate, PNG predictor", "unfiltered"])
def test_a_truncated_stream_is_rendered_instead(tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream short of its dictionary's size: unfiltered, it is not written out; Flate, passed on undecoded,
    tesseract reads no page from it (or fails). Either way the page is rendered, as poppler draws what it can."""
    path = truncated_cases(tmp_path)[case]
    assert route(path) == "lossless"
    with PdfDocument(path) as pdf:
        [image] = pdf.whole_page_images([1]).values()
        assert isinstance(image, PageLossless)
        assert (pdf.write_lossless(image, tmp_path / "page.tif") is None) == (case == "unfiltered")
    rendered: list[int] = []
    render = pdf_pages.render

    def counted(path: Path, number: int, *args: object, **kwargs: object) -> Path:
        rendered.append(number)
        return render(path, number, *args, **kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(pdf_pages, "render", counted)
    page = ocr(path)
    assert rendered == [1]
    assert (page.width, page.height) == (2480, 1200)


def test_searchable_pdf_keeps_the_lossless_image_and_adds_aligned_text(tmp_path: Path, no_rendering: None) -> None:
    """The stored image is carried over byte for byte; the invisible words sit on the printed ones."""
    page_image = render_page(["Invoice 2041 from ACME"]).convert("RGB")
    path = one_image_pdf(tmp_path / "scan.pdf", zlib.compress(page_image.tobytes()), page_image.size,
                         ColorSpace=pikepdf.Name.DeviceRGB, BitsPerComponent=8, Filter=pikepdf.Name.FlateDecode)
    (tmp_path / "out").mkdir()
    recognition = TesseractEngine(LIMITS).recognise(path, "application/pdf", "eng", lambda n: None, tmp_path / "out")
    [page] = list(recognition)
    outputs: Outputs = recognition.outputs
    searchable = outputs.searchable_pdf
    assert searchable is not None
    with pikepdf.open(path) as before, pikepdf.open(searchable) as after:
        [(_, original)] = before.pages[0].get_images().items()
        [(_, kept)] = after.pages[0].get_images().items()
        assert kept.read_raw_bytes() == original.read_raw_bytes() and kept.Filter == "/FlateDecode"
    bbox = subprocess.run(["pdftotext", "-bbox", str(searchable), "-"], check=True, capture_output=True,
                          text=True).stdout
    word = next(w for w in page.words if w.text == "Invoice")
    box = re.search(r'xMin="([\d.]+)" yMin="([\d.]+)"[^>]*>Invoice<', bbox)
    assert box is not None
    assert abs(float(box.group(1)) - word.left * POINTS_PER_PIXEL) < 3
    assert abs(float(box.group(2)) - word.top * POINTS_PER_PIXEL) < 6


def test_a_damaged_g4_stream_is_rendered_instead(tmp_path: Path) -> None:
    """A G4 stream that does not decode is not handed to tesseract (leptonica would read no page)."""
    path = one_image_pdf(tmp_path / "damaged.pdf", bytes(range(256)) * 40, (2480, 1200),
                         ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=1, Filter=pikepdf.Name.CCITTFaxDecode,
                         DecodeParms=pikepdf.Dictionary(K=-1, Columns=2480, Rows=1200))
    with PdfDocument(path) as pdf:
        [image] = pdf.whole_page_images([1]).values()
        assert isinstance(image, PageLossless) and image.kind == "ccitt"
        assert not pdf.write_lossless(image, tmp_path / "page.tif")


def jbig2_stream(page: Image.Image) -> bytes:
    """An embedded JBIG2 stream (no file header) of one page: page information, one immediate generic region
    coded with MMR, which is group 4 (a 1 is black in JBIG2, so the page is coded inverted), end of page."""
    g4, black_is_1 = g4_stream(page)
    if black_is_1:  # Pillow's coder took 0 bits (black) for its white runs: code the page inverted
        g4, _ = g4_stream(ImageOps.invert(page.convert("L")).convert("1"))
    width, height = page.size

    def segment(number: int, kind: int, data: bytes) -> bytes:
        return struct.pack(">IBBBI", number, kind, 0, 1, len(data)) + data  # no referred segments, page 1
    page_information = struct.pack(">IIIIBH", width, height, 0, 0, 0, 0)
    region = struct.pack(">IIIIB", width, height, 0, 0, 0) + b"\x01" + g4  # region info, then MMR on
    return segment(0, 48, page_information) + segment(1, 38, region) + segment(2, 49, b"")


needs_jbig2dec = pytest.mark.skipif(not jbig2.available(), reason="jbig2dec is not installed")


@needs_jbig2dec
@pytest.mark.parametrize("decode", [None, [1, 0]])
def test_jbig2_page_is_decoded_by_jbig2dec_not_rendered(tmp_path: Path, decode: list[int] | None,
                                                        no_rendering: None) -> None:
    """jbig2dec's bitmap is the page as coded, pixel for pixel, /Decode [1 0] included.

    The reference is the page itself, not a poppler render: poppler's own JBIG2 MMR decoder drifts from
    row 256 on the uninverted page here, where its CCITT decoder reads the same group 4 data exactly."""
    bw = bilevel()
    shown = ImageOps.invert(bw.convert("L")).convert("1") if decode else bw  # /Decode [1 0] turns it back
    keys: dict[str, object] = {"Decode": pikepdf.Array(decode)} if decode else {}
    path = one_image_pdf(tmp_path / "jbig2.pdf", jbig2_stream(shown), bw.size, ColorSpace=pikepdf.Name.DeviceGray,
                         BitsPerComponent=1, Filter=pikepdf.Name.JBIG2Decode, **keys)
    assert shown_brightness(path) > 200
    assert route(path) == "lossless"
    with PdfDocument(path) as pdf:
        pages = pdf_pages.plan_pages(path, pdf, 1, LIMITS)
        assert pages.lossless[1].kind == "jbig2"
        raster = pdf_pages.page_raster(path, pdf, pages, 1, tmp_path, LIMITS)
    with Image.open(raster.path) as decoded:
        assert decoded.convert("L").tobytes() == bw.convert("L").tobytes()
    assert ImageStat.Stat(tesseract_input(raster.path, tmp_path)).mean[0] > 200
    page = ocr(path)
    assert WORDS in text(page) and (page.width, page.height) == (2480, 1200)


@needs_jbig2dec
def test_a_jbig2_stream_jbig2dec_cannot_decode_is_rendered(tmp_path: Path) -> None:
    path = one_image_pdf(tmp_path / "jbig2.pdf", b"\0" * 16, (2480, 1200), ColorSpace=pikepdf.Name.DeviceGray,
                         BitsPerComponent=1, Filter=pikepdf.Name.JBIG2Decode)
    assert route(path) == "lossless"
    with PdfDocument(path) as pdf:
        pages = pdf_pages.plan_pages(path, pdf, 1, LIMITS)
        raster = pdf_pages.page_raster(path, pdf, pages, 1, tmp_path, LIMITS)
    assert raster.size is None  # rendered
    with Image.open(raster.path) as rendered:
        assert rendered.size == (2480, 1200)
