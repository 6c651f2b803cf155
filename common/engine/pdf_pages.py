"""A PDF's pages made ready for reading: counted, text layers taken, stored JPEGs passed on, others sized, rendered."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from common.engine.limits import OcrLimits
from common.engine.page_ocr import Raster
from common.engine.pdf import PageJpeg, PdfDocument
from common.engine.run import run
from common.errors import CorruptDocument, ImageTooLarge, OcrTimeout, TooManyPages

# A page with fewer letters and digits in its text layer than this is treated as scanned: scanners
# often add a few stray characters (page numbers, OCR-less stamps) to image-only pages.
MIN_TEXT_LAYER_CHARS = 20


@dataclass(frozen=True)
class PdfPages:
    """How each page of one PDF is read: from its text layer, from its stored JPEG, or rendered (the rest)."""

    count: int
    text_layers: dict[int, str]
    jpegs: dict[int, PageJpeg]
    layer_ms: int  # each text-layer page's share of the one pdftotext pass


def page_count(pdf: PdfDocument, limits: OcrLimits) -> int:
    """Counted before any page is read, so a PDF over MAX_PAGES costs nothing."""
    count = pdf.page_count
    if count < 1:
        raise CorruptDocument("the PDF has no pages")
    if count > limits.max_pages:
        raise TooManyPages(f"the PDF has {count} pages; the limit is {limits.max_pages} (MAX_PAGES)")
    return count


def plan_pages(path: Path, pdf: PdfDocument, count: int, limits: OcrLimits) -> PdfPages:
    """Decide every page's route before the first is read; a page too large to render fails the job now."""
    started = time.monotonic()
    layers = text_layers(path, count, limits)
    # One poppler pass served every text-layer page: each gets its share of the time.
    layer_ms = int((time.monotonic() - started) * 1000 / max(1, len(layers)))
    scanned = [n for n in range(1, count + 1) if n not in layers]
    # OCR_CLEAN_UP cleans rendered gray rasters only, as it was built: with it on, every scanned page is rendered.
    jpegs = {} if limits.clean_up else readable_jpegs(pdf, scanned, limits)
    for n in (n for n in scanned if n not in jpegs):
        # A page's size, not its file size, decides the raster: a huge page is a decompression bomb.
        pixels = pdf.rendered_pixels(n, limits.dpi)
        if pixels > limits.max_page_pixels:
            raise ImageTooLarge(
                f"page {n} would render to {pixels} pixels at {limits.dpi} DPI; the limit is "
                f"{limits.max_page_pixels} (MAX_PAGE_PIXELS)"
            )
    return PdfPages(count=count, text_layers=layers, jpegs=jpegs, layer_ms=layer_ms)


def text_layers(path: Path, count: int, limits: OcrLimits) -> dict[int, str]:
    """Pages with a usable text layer (born-digital) and their text, from one poppler pass over the PDF.

    A page needs MIN_TEXT_LAYER_CHARS letters or digits to count; every other page is OCRed.
    """
    out = run(["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"],
              timeout=limits.whole_document_timeout(count))
    # pdftotext ends every page with a form feed, so page n is the n-th part.
    parts = out.decode("utf-8", errors="replace").split("\f")
    return {n: parts[n - 1].strip() for n in range(1, min(count, len(parts)) + 1)
            if sum(ch.isalnum() for ch in parts[n - 1]) >= MIN_TEXT_LAYER_CHARS}


def readable_jpegs(pdf: PdfDocument, numbers: list[int], limits: OcrLimits) -> dict[int, PageJpeg]:
    """Whole-page JPEGs worth reading as stored: within the pixel limit and not finer than OCR_DPI
    (a 600 DPI scan is quicker to read rendered at 300 than as stored, four times the pixels)."""
    return {n: jpeg for n, jpeg in pdf.whole_page_jpegs(numbers).items()
            if jpeg.pixels <= limits.max_page_pixels and jpeg.dpi <= limits.dpi * 1.1}


def page_raster(path: Path, pdf: PdfDocument, pages: PdfPages, number: int, workdir: Path,
                limits: OcrLimits) -> Raster:
    """A scanned page's raster: its stored JPEG as it is, or the page rendered at OCR_DPI."""
    if number in pages.jpegs:
        image = workdir / f"page-{number:05d}.jpg"
        pdf.write_jpeg(pages.jpegs[number], image)
        return Raster(number=number, path=image, dpi=pages.jpegs[number].dpi, from_pdf=True)
    return Raster(number=number, path=render(path, number, workdir, limits), dpi=limits.dpi, from_pdf=True)


def render(path: Path, number: int, workdir: Path, limits: OcrLimits) -> Path:
    """One page at a time, so memory stays flat however long the PDF is.

    Gray, as tesseract binarises anyway (a third of the bytes); uncompressed TIFF: no encoding cost
    (PNG costs 12x more), and tesseract reads it faster than PPM. The crop box is what a viewer
    shows, what the page was sized by, and what its text layer is fitted to.
    """
    root = workdir / f"page-{number:05d}"
    try:
        run(["pdftoppm", "-r", str(limits.dpi), "-f", str(number), "-l", str(number), "-cropbox", "-gray",
             "-tiff", "-singlefile", str(path), str(root)], timeout=limits.page_timeout, failure=CorruptDocument)
    except OcrTimeout as e:
        raise OcrTimeout(
            f"rendering page {number} took longer than {limits.page_timeout:g} s (OCR_PAGE_TIMEOUT)"
        ) from e
    except CorruptDocument as e:
        raise CorruptDocument(f"page {number} of the PDF cannot be rendered: {e.message}") from e
    image = root.with_suffix(".tif")
    if not image.exists():
        raise CorruptDocument(f"page {number} of the PDF rendered to nothing")
    return image
