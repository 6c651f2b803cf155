"""A PDF's pages made ready for reading: counted, text layers taken, stored page images passed on, the rest rendered."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from common.engine.pdf import jbig2
from common.engine.limits import OcrLimits
from common.engine.page.read import Raster
from common.engine.pdf.document import PageJpeg, PageLossless, PdfDocument
from common.engine.run import run
from common.engine.pdf.text_layer import judge
from common.errors import CorruptDocument, ImageTooLarge, OcrTimeout, TooManyPages

# An image covering less of the page than this (a logo, a signature) does not size the page's raster.
MIN_SIZING_COVERAGE = 0.5


@dataclass(frozen=True)
class PdfPages:
    """How each page of one PDF is read: from its text layer, its stored JPEG, its stored lossless image, or
    rendered (the rest)."""

    count: int
    text_layers: dict[int, str]
    jpegs: dict[int, PageJpeg]
    layer_ms: int  # each text-layer page's share of the one pdftotext pass
    rejected: dict[int, str] = field(default_factory=dict)  # pages whose layer was refused, and why
    dpis: dict[int, int] = field(default_factory=dict)  # rendered pages' resolution, when not OCR_DPI
    lossless: dict[int, PageLossless] = field(default_factory=dict)

    def dpi_of(self, number: int, limits: OcrLimits) -> int:
        return self.dpis.get(number, limits.dpi)

    def route(self, number: int) -> str:
        """"text_layer", "jpeg", "lossless" or "render": how page `number` is read."""
        if number in self.text_layers:
            return "text_layer"
        if number in self.jpegs:
            return "jpeg"
        return "lossless" if number in self.lossless else "render"


def page_count(pdf: PdfDocument, limits: OcrLimits) -> int:
    """Counted before any page is read, so a PDF over MAX_PAGES costs nothing."""
    count = pdf.page_count
    if count < 1:
        raise CorruptDocument("the PDF has no pages")
    if count > limits.max_pages:
        raise TooManyPages(f"the PDF has {count} pages; the limit is {limits.max_pages} (MAX_PAGES)")
    return count


def plan_pages(path: Path, pdf: PdfDocument, count: int, limits: OcrLimits, lang: str = "eng") -> PdfPages:
    """Decide every page's route before the first is read; a page too large to render fails the job now."""
    started = time.monotonic()
    layers, rejected = text_layers(path, count, limits, lang)
    # One poppler pass served every text-layer page: each gets its share of the time.
    layer_ms = int((time.monotonic() - started) * 1000 / max(1, len(layers)))
    scanned = [n for n in range(1, count + 1) if n not in layers]
    # OCR_CLEAN_UP cleans rendered gray rasters only, as it was built: with it on, every scanned page is rendered.
    stored = {} if limits.clean_up else readable_images(pdf, scanned, limits)
    jpegs = {n: image for n, image in stored.items() if isinstance(image, PageJpeg)}
    lossless = {n: image for n, image in stored.items() if isinstance(image, PageLossless)}
    dpis: dict[int, int] = {}
    for n in (n for n in scanned if n not in stored):
        dpi = render_dpi(pdf, n, limits)
        if dpi != limits.dpi:
            dpis[n] = dpi
        # A page's size, not its file size, decides the raster: a huge page is a decompression bomb.
        pixels = pdf.rendered_pixels(n, dpi)
        if pixels > limits.max_page_pixels:
            raise ImageTooLarge(
                f"page {n} would render to {pixels} pixels at {dpi} DPI; the limit is "
                f"{limits.max_page_pixels} (MAX_PAGE_PIXELS)"
            )
    return PdfPages(count=count, text_layers=layers, jpegs=jpegs, layer_ms=layer_ms, rejected=rejected, dpis=dpis,
                    lossless=lossless)


def render_dpi(pdf: PdfDocument, number: int, limits: OcrLimits) -> int:
    """OCR_DPI when the page fits the pixel limit at it; else the resolution of what the page holds.

    A huge page (a large /MediaBox, a poster) carrying a scan has no more detail than the scan: rendered
    at the scan's own resolution (never above OCR_DPI) it loses nothing, where OCR_DPI would be refused.
    A page that fits keeps OCR_DPI, so small images (a logo) never coarsen the text drawn around them.
    """
    if pdf.rendered_pixels(number, limits.dpi) <= limits.max_page_pixels:
        return limits.dpi
    image = pdf.largest_image(number)
    if image is None or image.coverage < MIN_SIZING_COVERAGE:
        return limits.dpi
    return max(1, min(limits.dpi, round(image.dpi)))


def text_layers(path: Path, count: int, limits: OcrLimits, lang: str = "eng") -> tuple[dict[int, str], dict[int, str]]:
    """Pages with a usable text layer (born-digital) and their text, from one poppler pass over the PDF;
    and the pages whose layer has text a reader would not see (text_layer.judge), with the reason.

    Every page not taken from its layer is OCRed.
    """
    try:
        out = run(["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"],
                  timeout=limits.whole_document_timeout(count), failure=CorruptDocument)
    except CorruptDocument as e:
        raise CorruptDocument(f"the PDF is damaged and its text cannot be read ({e.message})", detail=e.detail) from e
    # pdftotext ends every page with a form feed, so page n is the n-th part.
    parts = out.decode("utf-8", errors="replace").split("\f")
    usable: dict[int, str] = {}
    rejected: dict[int, str] = {}
    for n in range(1, min(count, len(parts)) + 1):
        verdict = judge(parts[n - 1], lang)
        if verdict.usable:
            usable[n] = parts[n - 1].strip()
        elif verdict.reason:
            rejected[n] = verdict.reason
    return usable, rejected


def readable_images(pdf: PdfDocument, numbers: list[int], limits: OcrLimits) -> dict[int, PageJpeg | PageLossless]:
    """Whole-page images (JPEG or lossless) worth reading as stored: within the pixel limit and not finer
    than OCR_DPI (a 600 DPI scan is quicker to read rendered at 300 than as stored, four times the pixels)."""
    return {n: image for n, image in pdf.whole_page_images(numbers).items()
            if image.pixels <= limits.max_page_pixels and image.dpi <= limits.dpi * 1.1}


def readable_jpegs(pdf: PdfDocument, numbers: list[int], limits: OcrLimits) -> dict[int, PageJpeg]:
    """The whole-page JPEGs among readable_images."""
    return {n: image for n, image in readable_images(pdf, numbers, limits).items() if isinstance(image, PageJpeg)}


def page_raster(path: Path, pdf: PdfDocument, pages: PdfPages, number: int, workdir: Path,
                limits: OcrLimits) -> Raster:
    """A scanned page's raster: its stored JPEG as it is, its stored lossless image, or the page rendered
    at OCR_DPI (also when a lossless image's stream turns out not to decode to what it promised)."""
    if number in pages.jpegs:
        image = workdir / f"page-{number:05d}.jpg"
        pdf.write_jpeg(pages.jpegs[number], image)
        return Raster(number=number, path=image, dpi=pages.jpegs[number].dpi, from_pdf=True)
    if number in pages.lossless:
        stored = pages.lossless[number]
        if stored.kind == "jbig2":
            streams = pdf.jbig2_streams(stored)
            written = None if streams is None else jbig2.decode(
                *streams, workdir / f"page-{number:05d}.tif", stored.width, stored.height, stored.black_is_0,
                stored.dpi, limits.page_timeout)
        else:
            written = pdf.write_lossless(stored, workdir / f"page-{number:05d}.tif")
        if written is not None:
            return Raster(number=number, path=written, dpi=stored.dpi, from_pdf=True,
                          size=(stored.width, stored.height))
        for suffix in (".tif", ".png"):
            (workdir / f"page-{number:05d}{suffix}").unlink(missing_ok=True)
        return rendered_raster(path, pdf, number, workdir, limits)
    dpi = pages.dpi_of(number, limits)
    return Raster(number=number, path=render(path, number, workdir, limits, dpi), dpi=dpi, from_pdf=True)


def rendered_raster(path: Path, pdf: PdfDocument, number: int, workdir: Path, limits: OcrLimits) -> Raster:
    """A page planned to be read from its stored image, rendered instead (its stream did not decode).

    Not sized when planned: sized now as any rendered page, so the raster stays within MAX_PAGE_PIXELS.
    """
    dpi = render_dpi(pdf, number, limits)
    return Raster(number=number, path=render(path, number, workdir, limits, dpi), dpi=dpi, from_pdf=True)


def render(path: Path, number: int, workdir: Path, limits: OcrLimits, dpi: int | None = None) -> Path:
    """One page at a time, so memory stays flat however long the PDF is.

    Gray, as tesseract binarises anyway (a third of the bytes); uncompressed TIFF: no encoding cost
    (PNG costs 12x more), and tesseract reads it faster than PPM. The crop box is what a viewer
    shows, what the page was sized by, and what its text layer is fitted to. pdftoppm, not pdftocairo
    (what pdf2image runs for TIFF): chosen by word recall on clean, skewed and noisy scans
    (bench.quality_bench prints both side by side).
    """
    root = workdir / f"page-{number:05d}"
    try:
        run(["pdftoppm", "-r", str(dpi or limits.dpi), "-f", str(number), "-l", str(number), "-cropbox", "-gray",
             "-tiff", "-singlefile", str(path), str(root)], timeout=limits.page_timeout, failure=CorruptDocument)
    except OcrTimeout as e:
        raise OcrTimeout(
            f"rendering page {number} took longer than {limits.page_timeout:g} s (OCR_PAGE_TIMEOUT)"
        ) from e
    except CorruptDocument as e:
        raise CorruptDocument(f"page {number} of the PDF is damaged and cannot be rendered ({e.message})",
                              detail=e.detail) from e
    image = root.with_suffix(".tif")
    if not image.exists():
        raise CorruptDocument(f"page {number} of the PDF rendered to nothing")
    return image
