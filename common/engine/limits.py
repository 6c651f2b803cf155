"""The limits an engine run keeps (pages, pixels, time) and how it reads pages (resolution, parallelism, clean-up)."""

from __future__ import annotations

from dataclasses import dataclass

# Seconds per page a whole-document pass may add to OCR_PAGE_TIMEOUT: pdftotext and pdfunite pass over
# every page once, far quicker per page than OCR, but their time still grows with the page count.
WHOLE_DOCUMENT_SECONDS_PER_PAGE = 0.5


@dataclass(frozen=True)
class OcrLimits:
    max_pages: int
    max_page_pixels: int
    page_timeout: float
    dpi: int
    workers: int
    clean_up: bool = False  # median filter + autocontrast before OCR (OCR_CLEAN_UP)

    def whole_document_timeout(self, pages: int) -> float:
        """For one program run over every page: long enough for MAX_PAGES pages, short enough that a hung
        program fails the job instead of holding its lease (renewed while the worker lives) for ever."""
        return self.page_timeout + pages * WHOLE_DOCUMENT_SECONDS_PER_PAGE
