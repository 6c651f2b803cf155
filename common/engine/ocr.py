"""The tesseract engine: a document's pages prepared, read in parallel and streamed, then its outputs assembled."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from PIL import Image

from common.engine import hocr, scratch

from common.engine.pdf import pages as pdf_pages

from common.engine.pdf import searchable as searchable_pdf
from common.engine.page.images import image_rasters
from common.engine.pdf.layer_words import LayerLayout, place_layers, write_hocr
from common.engine.limits import OcrLimits
from common.engine.page.read import DocumentLanguage, PageRead, UnreadableImage, read_page
from common.engine.pdf.document import PdfDocument
from common.engine.recognition import Outputs, Recognition
from common.engine.pdf.searchable import TextLayer
from common.logging import get_logger
from common.models import PageResult, ResultWarning, WarningCode

log = get_logger()

# OcrLimits lives in limits.py, as the page modules read it too; callers take it from here with the engine.
__all__ = ["OcrLimits", "TesseractEngine"]


# The whole document's outputs, in the caller's folder.
_SEARCHABLE_PDF = "searchable.pdf"
_HOCR = "ocr.hocr"


class TesseractEngine:
    """Pages run in parallel, one tesseract thread each: OpenMP threads only contend on shared cores."""

    def __init__(self, limits: OcrLimits) -> None:
        self.limits = limits
        # Pillow refuses decompression bombs itself above this, before decoding pixels.
        Image.MAX_IMAGE_PIXELS = limits.max_page_pixels

    def recognise(
        self, path: Path, media_type: str, lang: str, on_page_count: Callable[[int], None],
        output_dir: Path | None = None,
    ) -> Recognition:
        return Recognition(self._read(path, media_type, lang, on_page_count, output_dir))

    def _read(
        self, path: Path, media_type: str, lang: str, on_page_count: Callable[[int], None], output_dir: Path | None
    ) -> Generator[PageResult, None, Outputs]:
        # Page rasters and each page's hOCR and PDF live here until the outputs are assembled.
        with scratch.job_dir("ocr-pages-") as tmp:
            if media_type == "application/pdf":
                return (yield from self._read_pdf(path, Path(tmp), lang, on_page_count, output_dir))
            return (yield from self._read_image(path, Path(tmp), lang, on_page_count, output_dir))

    def _read_image(
        self, path: Path, workdir: Path, lang: str, on_page_count: Callable[[int], None], output_dir: Path | None
    ) -> Generator[PageResult, None, Outputs]:
        """Every frame OCRed; the searchable PDF joins the pages' PDFs (each the image with its text)."""
        rasters = image_rasters(path, workdir, self.limits)
        language = DocumentLanguage()
        on_page_count(len(rasters))

        def page(n: int) -> PageRead:
            return read_page(rasters[n - 1], lang, self.limits, output_dir is not None, time.monotonic(), language)

        pdfs: list[Path] = []
        hocrs: list[Path] = []
        for read in self._in_parallel(len(rasters), page):
            if read.pdf:
                pdfs.append(read.pdf)
            if read.hocr:
                hocrs.append(read.hocr)
            yield read.result
        if output_dir is None:
            return Outputs()
        return Outputs(
            # Joining copies every page once: its time grows with the page count, not with a page's OCR,
            # so it gets OCR_PAGE_TIMEOUT plus a share per page rather than the page timeout alone.
            searchable_pdf=searchable_pdf.join_pages(pdfs, output_dir / _SEARCHABLE_PDF,
                                                     self.limits.whole_document_timeout(len(pdfs))),
            hocr=hocr.merge(hocrs, output_dir / _HOCR),
        )

    def _read_pdf(
        self, path: Path, workdir: Path, lang: str, on_page_count: Callable[[int], None], output_dir: Path | None
    ) -> Generator[PageResult, None, Outputs]:
        """Text-layer pages read from the layer, one-image pages (JPEG or lossless) from their image, the rest rendered.

        The searchable PDF is the original with each OCRed page's invisible text laid over it.
        """
        layers: dict[int, TextLayer] = {}  # page -> its text-only PDF and how it lies on the page
        hocrs: list[Path] = []
        language = DocumentLanguage()
        with PdfDocument(path) as pdf:
            count = pdf_pages.page_count(pdf, self.limits)
            on_page_count(count)
            pages = pdf_pages.plan_pages(path, pdf, count, self.limits, lang)
            # Words placed as OCR would place them, so every page has words, lines and hOCR.
            placed = place_layers(path, pages.text_layers, count, self.limits, workdir) if pages.text_layers else {}

            def page(n: int) -> PageRead:
                started = time.monotonic()
                if n in pages.text_layers:
                    layout = LayerLayout.from_json(placed[n].read_text(encoding="utf-8"))
                    placed[n].unlink()
                    kept = write_hocr(layout, n, workdir / f"page-{n:05d}.hocr") if output_dir is not None else None
                    return PageRead(PageResult(number=n, text=pages.text_layers[n], confidence=None,
                                               method="text_layer", width=layout.width, height=layout.height,
                                               duration_ms=pages.layer_ms + int((time.monotonic() - started) * 1000),
                                               words=layout.words, lines=layout.lines), hocr=kept)
                raster = pdf_pages.page_raster(path, pdf, pages, n, workdir, self.limits)
                try:
                    read = read_page(raster, lang, self.limits, output_dir is not None, started, language)
                except UnreadableImage as e:
                    # E.g. a stored stream that inflates short: poppler draws what it can of it, as for any page.
                    log.warning("ocr.stored_image_unreadable", page=n, reason=e.message)
                    raster = pdf_pages.rendered_raster(path, pdf, n, workdir, self.limits)
                    read = read_page(raster, lang, self.limits, output_dir is not None, started, language)
                if n in pages.rejected:
                    warning = ResultWarning(WarningCode.TEXT_LAYER_REJECTED,
                                            f"the page's own text layer was not used ({pages.rejected[n]}): "
                                            "the page was OCRed instead")
                    read = replace(read, result=replace(read.result, text_layer_rejected=pages.rejected[n],
                                                        warnings=[warning, *read.result.warnings]))
                return read

            for read in self._in_parallel(count, page):
                if read.pdf and read.geometry is not None:
                    number = read.result.number
                    layers[number] = TextLayer(read.pdf, read.geometry, hide_old_text=number in pages.rejected,
                                               words=read.result.words)
                if read.hocr:
                    hocrs.append(read.hocr)
                yield read.result
        if output_dir is None:
            return Outputs()
        return Outputs(
            searchable_pdf=searchable_pdf.lay_text_over(path, layers, output_dir / _SEARCHABLE_PDF),
            hocr=hocr.merge(hocrs, output_dir / _HOCR) if hocrs else None,
        )

    def _in_parallel(self, count: int, page: Callable[[int], PageRead]) -> Iterator[PageRead]:
        workers = max(1, min(self.limits.workers, count))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocr-page") as pool:
            # map keeps page order while pages run in parallel.
            yield from pool.map(page, range(1, count + 1))
