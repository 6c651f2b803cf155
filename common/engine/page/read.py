"""One page raster read by tesseract: analysed, straightened where it needs it, read (again upright if it reads
badly, again in its language under lang=auto), its words placed back on the scan, its warnings, its PDF."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from common.engine import hocr

from common.engine.pdf import searchable as searchable_pdf
from common.engine.language.identify import identify_languages
from common.engine.language.installed import AUTO, installed_languages
from common.engine.limits import OcrLimits
from common.engine.page.analysis import PageAnalysis, analyse
from common.engine.page.checks import warnings_for
from common.engine.page.straighten import Straightening, needs_pixels, straightened
from common.engine.run import run
from common.engine.pdf.searchable import TextLayer
from common.errors import OcrError, OcrTimeout
from common.logging import get_logger
from common.models import PageResult

log = get_logger()

# Below this mean word confidence a page may be sideways or upside down: worth an orientation check.
LOW_CONFIDENCE = 50.0
# tesseract's own OSD confidence; under this its answer is a guess.
MIN_OSD_CONFIDENCE = 2.0
# OSD guesses on photographs and near-empty pages too, so its turn is kept only when the turned read is
# clearly better: this many points of mean word confidence above the first read...
ROTATION_MARGIN = 15.0
# ...and this many letters or digits in words read with at least LOW_CONFIDENCE: a page with almost
# no text keeps the orientation its owner gave it.
MIN_TURNED_CHARS = 20

# lang=auto reads a page first with this model: Latin script, and what most pages sent here are written in;
# a page in another language is identified from this read and read again.
FIRST_READ_LANG = "eng"

# One OpenMP thread per tesseract: pages already run in parallel, extra threads only contend.
_TESSERACT_ENV = dict(os.environ, OMP_THREAD_LIMIT="1")


class UnreadableImage(OcrError):
    """A page's stored image did not decode to what its PDF dictionary promised: render the page instead."""


@dataclass(frozen=True)
class Raster:
    """A page ready for tesseract: an image file (removed once read), its resolution, and where it came from.

    A PDF page's own PDF is a text-only layer, scaled onto the original page, so tesseract takes the
    resolution the raster records (or estimates it); an image's page PDF carries the image at `dpi`.
    """

    number: int
    path: Path
    dpi: int
    from_pdf: bool
    # A stored image passed on undecoded: the size tesseract must find in it, or the page was not read.
    size: tuple[int, int] | None = None


@dataclass(frozen=True)
class PageRead:
    """A page's result and, when files were kept, its hOCR and PDF in the run's work folder (for assembly)."""

    result: PageResult
    hocr: Path | None = None
    pdf: Path | None = None  # a PDF page's text-only layer, or an image's whole page
    geometry: Straightening | None = None  # how the raster tesseract read was turned from the page


class DocumentLanguage:
    """lang=auto across one document's pages: the language the latest page was found in reads the next page
    first, so a German document is read twice on its first page (or two, in parallel) rather than on each."""

    def __init__(self) -> None:
        self._lang = FIRST_READ_LANG
        self._lock = threading.Lock()

    @property
    def first(self) -> str:
        with self._lock:
            return self._lang

    def found(self, lang: str) -> None:
        with self._lock:
            self._lang = lang


def read_page(raster: Raster, lang: str, limits: OcrLimits, keep_files: bool, started: float,
              document_language: DocumentLanguage | None = None) -> PageRead:
    """OCR a page raster: looked at first (skew, sideways lines, coloured ink, an uneven background), given to
    tesseract straightened where it needs it, and checked for orientation when it reads badly.

    The words come back on the page as scanned (a turned page's words with their four corners), and the
    page's warnings say what may be missing. Orientation detection costs about a third of a page's OCR, so
    only pages whose lines run down the page, or that read badly, pay it.
    `keep_files`: tesseract also writes the page's PDF, and both files stay as page-NNNNN.hocr/.pdf.
    """
    original = raster.path
    image = original
    try:
        analysis = _analysed(raster)
        image, geometry = _prepared(raster, analysis, limits)
        text_only = raster.from_pdf or image != original
        reading = (document_language.first if document_language else FIRST_READ_LANG) if lang == AUTO else lang
        read = _first_read(raster, image, reading, limits.page_timeout, keep_files, text_only)
        if read.confidence is None or read.confidence < LOW_CONFIDENCE:
            image, geometry, read, text_only = _upright_if_better(raster, image, geometry, read, reading, limits,
                                                                  keep_files, text_only)
        languages: list[str] = []
        if lang == AUTO:
            read, languages = _in_its_language(raster, image, read, reading, limits.page_timeout, keep_files,
                                               text_only, document_language)
        moved = geometry.angle != 0
        words = [geometry.word(w) for w in read.words_in_lines()] if moved else read.words_in_lines()
        lines = [geometry.line(line) for line in read.lines] if moved else read.lines
        pdf = _kept(raster, ".pdf") if keep_files else None
        if pdf is not None and text_only and not raster.from_pdf:
            pdf = _scan_with_text(raster, TextLayer(pdf, geometry, words=words))
    finally:
        if image != original:
            image.unlink(missing_ok=True)
        original.unlink(missing_ok=True)
    size = geometry.original
    result = PageResult(
        number=raster.number,
        text=read.text,
        confidence=read.confidence,
        method="ocr",
        width=size[0],
        height=size[1],
        duration_ms=int((time.monotonic() - started) * 1000),
        rotation=geometry.rotation,
        skew=geometry.skew,
        words=words,
        lines=lines,
        warnings=warnings_for(analysis, words, read.confidence),
        languages=languages,
    )
    if not keep_files:
        return PageRead(result)
    return PageRead(result, hocr=_kept(raster, ".hocr"), pdf=pdf, geometry=geometry)


def _prepared(raster: Raster, analysis: PageAnalysis | None, limits: OcrLimits) -> tuple[Path, Straightening]:
    """The raster tesseract reads first: the page's own file, or, where the analysis asks for it, a copy turned
    upright (OSD says which way a sideways page goes), deskewed and made clean."""
    original = raster.path
    with Image.open(original) as im:
        size = im.size
    if analysis is None:
        return original, Straightening.none(size)
    turn = _orientation(original, limits.page_timeout) if analysis.sideways else 0
    skew = analysis.skew_after_turn(turn)
    if not needs_pixels(analysis, turn, skew, limits.clean_up):
        return original, Straightening.none(size)
    return straightened(original, raster.dpi, analysis, turn, skew, limits.clean_up,
                        original.with_name(f"{original.stem}-straight.tif"))


def _upright_if_better(raster: Raster, image: Path, geometry: Straightening, read: hocr.HocrPage, reading: str,
                       limits: OcrLimits, keep_files: bool,
                       text_only: bool) -> tuple[Path, Straightening, hocr.HocrPage, bool]:
    """A page that read badly, read again turned as OSD says; the turned read is kept only if clearly better.
    Returns the raster, its straightening, the read and whether its PDF is text only, whichever was kept."""
    turn = _orientation(image, limits.page_timeout)
    if not turn:
        return image, geometry, read, text_only
    # OSD's "Rotate" is the clockwise turn that makes the page upright; PIL turns anticlockwise.
    upright = rewritten(image, "upright", raster.dpi, lambda im: im.rotate(-turn, expand=True), keep=True)
    turned = _tesseract(raster, upright, reading, limits.page_timeout, keep_files, True, kept_as="-upright")
    if not clearly_better(read, turned):
        upright.unlink(missing_ok=True)
        if keep_files:
            for suffix in (".hocr", ".pdf"):
                _kept(raster, suffix, "-upright").unlink(missing_ok=True)
        return image, geometry, read, text_only
    if image != raster.path:
        image.unlink(missing_ok=True)
    with Image.open(upright) as im:
        geometry = geometry.then(-turn, im.size)
    if keep_files:
        for suffix in (".hocr", ".pdf"):
            _kept(raster, suffix, "-upright").replace(_kept(raster, suffix))
    return upright, geometry, turned, True


def _scan_with_text(raster: Raster, layer: TextLayer) -> Path:
    """An image read straightened: its page is the scan as it is, with the text laid on it turned back."""
    pdf = searchable_pdf.image_page(raster.path, raster.dpi, layer, _kept(raster, ".pdf", "-page"))
    layer.pdf.unlink()
    return pdf.replace(_kept(raster, ".pdf"))


def _in_its_language(raster: Raster, image: Path, read: hocr.HocrPage, reading: str, timeout: float,
                     keep_files: bool, text_only: bool,
                     document_language: DocumentLanguage | None) -> tuple[hocr.HocrPage, list[str]]:
    """lang=auto: the first read's text identified; read again in the detected installed languages when they
    are not what it was read with. Returns the read kept and the languages detected (installed ones)."""
    choice = identify_languages(read.text, installed_languages(), reading)
    if choice is None:
        return read, []
    detected = [d.lang for d in choice.detected if d.installed]
    if document_language is not None:
        document_language.found(choice.lang)
    if choice.lang == reading:
        return read, detected
    again = _tesseract(raster, image, choice.lang, timeout, keep_files, text_only, kept_as="-lang")
    if keep_files:
        for suffix in (".hocr", ".pdf"):
            _kept(raster, suffix, "-lang").replace(_kept(raster, suffix))
    return again, detected


def _analysed(raster: Raster) -> PageAnalysis | None:
    """The page's analysis; None when its file cannot be decoded here (tesseract then says what it makes of it)."""
    try:
        return analyse(raster.path, raster.dpi)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        log.info("page.not_analysed", page=raster.number, error=str(e))
        return None


def clearly_better(first: hocr.HocrPage, turned: hocr.HocrPage) -> bool:
    """Whether the read of the turned page beats the first read by ROTATION_MARGIN, on real text."""
    readable = sum(ch.isalnum() for w in turned.words
                   if w.confidence is not None and w.confidence >= LOW_CONFIDENCE for ch in w.text)
    if readable < MIN_TURNED_CHARS or turned.confidence is None:
        return False
    return turned.confidence >= (first.confidence or 0.0) + ROTATION_MARGIN


def rewritten(image_path: Path, tag: str, dpi: int, change: Callable[[Image.Image], Image.Image],
              keep: bool = False) -> Path:
    """The page raster changed, as an uncompressed TIFF beside it (named with `tag`); the old one is removed
    unless `keep` (a turned page is compared with the first read before either is dropped)."""
    out = image_path.with_name(f"{image_path.stem}-{tag}.tif")
    with Image.open(image_path) as im:
        change(im).save(out, format="TIFF", dpi=(dpi, dpi), compression="raw")
    if not keep:
        image_path.unlink()
    return out


def _kept(raster: Raster, suffix: str, tag: str = "") -> Path:
    """Where a page's kept file lies: named by page, whichever raster (cleaned, turned) tesseract last read."""
    return raster.path.with_name(f"page-{raster.number:05d}{tag}{suffix}")


def _tesseract(raster: Raster, image: Path, lang: str, timeout: float, keep_files: bool, text_only: bool,
               kept_as: str = "") -> hocr.HocrPage:
    """One tesseract run: hOCR (words, boxes, confidences) and, with `keep_files`, the page's PDF.

    The resolution is always said: a PDF's JPEG or a bare image often records none (or 72), and tesseract
    would then guess one (70 DPI, hOCR's scan_res), although the page's geometry gives the true one.
    """
    base = image.with_suffix("")
    options = ["--dpi", str(raster.dpi)]
    if text_only and keep_files:
        options += ["-c", "textonly_pdf=1"]
    renderers = ["hocr"] + (["pdf"] if keep_files else [])
    try:
        run(["tesseract", str(image), str(base), "-l", lang, *options, *renderers], timeout=timeout,
            env=_TESSERACT_ENV)
        page = hocr.parse(base.with_suffix(".hocr").read_bytes())
        if keep_files:
            # A turned page's read is kept beside the first (`kept_as`) until one of them is chosen.
            base.with_suffix(".hocr").replace(_kept(raster, ".hocr", kept_as))
            base.with_suffix(".pdf").replace(_kept(raster, ".pdf", kept_as))
    except OcrTimeout as e:
        raise OcrTimeout(f"page {raster.number} took longer than {timeout:g} s (OCR_PAGE_TIMEOUT)") from e
    except OcrError as e:
        raise OcrError(f"tesseract failed on page {raster.number} ({e.message})", detail=e.detail) from e
    finally:
        if not keep_files:
            base.with_suffix(".hocr").unlink(missing_ok=True)
    return page


def _first_read(raster: Raster, image: Path, lang: str, timeout: float, keep_files: bool,
                text_only: bool) -> hocr.HocrPage:
    """The page's first tesseract run; for a stored image passed on undecoded (`raster.size`), UnreadableImage
    when leptonica could not decode it: tesseract fails on a short PNG, and reads no page from a short TIFF."""
    try:
        read = _tesseract(raster, image, lang, timeout, keep_files, text_only)
    except OcrTimeout:
        raise
    except OcrError as e:
        if raster.size is None:
            raise
        raise UnreadableImage(e.message, detail=e.detail) from e
    if raster.size is not None and image == raster.path and read.size != raster.size:
        raise UnreadableImage(f"tesseract read no {raster.size[0]}x{raster.size[1]} image from page "
                              f"{raster.number}'s stored stream")
    return read


def _orientation(image: Path, timeout: float) -> int:
    """Degrees (0, 90, 180, 270) to turn the page clockwise, per tesseract's OSD; 0 when unsure."""
    try:
        out = run(["tesseract", str(image), "-", "--psm", "0"], timeout=timeout,
                  env=_TESSERACT_ENV).decode(errors="replace")
    except OcrError:
        return 0  # too few characters to tell: keep the page as it is
    rotate = re.search(r"^Rotate:\s*(\d+)", out, re.M)
    confident = re.search(r"^Orientation confidence:\s*([\d.]+)", out, re.M)
    if not rotate or not confident or float(confident.group(1)) < MIN_OSD_CONFIDENCE:
        return 0
    return int(rotate.group(1)) % 360
