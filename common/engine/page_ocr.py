"""One page raster read by tesseract: text, words and boxes (from hOCR), turned upright if it reads badly, its PDF."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFilter, ImageOps

from common.engine import hocr
from common.engine.limits import OcrLimits
from common.engine.run import run
from common.errors import OcrError, OcrTimeout
from common.models import PageResult

# Below this mean word confidence a page may be sideways or upside down: worth an orientation check.
LOW_CONFIDENCE = 50.0
# tesseract's own OSD confidence; under this its answer is a guess.
MIN_OSD_CONFIDENCE = 2.0

# One OpenMP thread per tesseract: pages already run in parallel, extra threads only contend.
_TESSERACT_ENV = dict(os.environ, OMP_THREAD_LIMIT="1")


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


@dataclass(frozen=True)
class PageRead:
    """A page's result and, when files were kept, its hOCR and PDF in the run's work folder (for assembly)."""

    result: PageResult
    hocr: Path | None = None
    pdf: Path | None = None


def read_page(raster: Raster, lang: str, limits: OcrLimits, keep_files: bool, started: float) -> PageRead:
    """OCR a page raster; a page read with low confidence is checked for orientation and read upright.

    Orientation detection costs about a third of a page's OCR, so only pages that read badly pay it.
    `keep_files`: tesseract also writes the page's PDF, and both files stay as page-NNNNN.hocr/.pdf.
    """
    image = raster.path
    try:
        if limits.clean_up:
            image = rewritten(image, "clean", raster.dpi, cleaned_up)
        read = _tesseract(raster, image, lang, limits.page_timeout, keep_files)
        rotation = 0
        if read.confidence is None or read.confidence < LOW_CONFIDENCE:
            rotation = _orientation(image, limits.page_timeout)
            if rotation:
                # OSD's "Rotate" is the clockwise turn that makes the page upright; PIL turns anticlockwise.
                image = rewritten(image, "upright", raster.dpi, lambda im: im.rotate(-rotation, expand=True))
                read = _tesseract(raster, image, lang, limits.page_timeout, keep_files)
        with Image.open(image) as im:
            width, height = im.size
    finally:
        image.unlink(missing_ok=True)
    result = PageResult(
        number=raster.number,
        text=read.text,
        confidence=read.confidence,
        method="ocr",
        width=width,
        height=height,
        duration_ms=int((time.monotonic() - started) * 1000),
        rotation=rotation,
        words=read.words,
    )
    if not keep_files:
        return PageRead(result)
    return PageRead(result, hocr=_kept(raster, ".hocr"), pdf=_kept(raster, ".pdf"))


def cleaned_up(image: Image.Image) -> Image.Image:
    """Speckles out (3x3 median), contrast stretched: for poor scans (OCR_CLEAN_UP)."""
    return ImageOps.autocontrast(image.filter(ImageFilter.MedianFilter(3)))


def rewritten(image_path: Path, tag: str, dpi: int, change: Callable[[Image.Image], Image.Image]) -> Path:
    """The page raster changed, as an uncompressed TIFF beside it (named with `tag`); the old one is removed."""
    out = image_path.with_name(f"{image_path.stem}-{tag}.tif")
    with Image.open(image_path) as im:
        change(im).save(out, format="TIFF", dpi=(dpi, dpi), compression="raw")
    image_path.unlink()
    return out


def _kept(raster: Raster, suffix: str) -> Path:
    """Where a page's kept file lies: named by page, whichever raster (cleaned, turned) tesseract last read."""
    return raster.path.with_name(f"page-{raster.number:05d}{suffix}")


def _tesseract(raster: Raster, image: Path, lang: str, timeout: float, keep_files: bool) -> hocr.HocrPage:
    """One tesseract run: hOCR (words, boxes, confidences) and, with `keep_files`, the page's PDF."""
    base = image.with_suffix("")
    if raster.from_pdf:
        options = ["-c", "textonly_pdf=1"] if keep_files else []
    else:
        options = ["--dpi", str(raster.dpi)]
    renderers = ["hocr"] + (["pdf"] if keep_files else [])
    try:
        run(["tesseract", str(image), str(base), "-l", lang, *options, *renderers], timeout=timeout,
            env=_TESSERACT_ENV)
        page = hocr.parse(base.with_suffix(".hocr").read_bytes())
        if keep_files:
            # A second read (after turning the page) replaces the first one's files.
            base.with_suffix(".hocr").replace(_kept(raster, ".hocr"))
            base.with_suffix(".pdf").replace(_kept(raster, ".pdf"))
    except OcrTimeout as e:
        raise OcrTimeout(f"page {raster.number} took longer than {timeout:g} s (OCR_PAGE_TIMEOUT)") from e
    except OcrError as e:
        raise OcrError(f"tesseract failed on page {raster.number}: {e.message}") from e
    finally:
        if not keep_files:
            base.with_suffix(".hocr").unlink(missing_ok=True)
    return page


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
