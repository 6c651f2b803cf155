"""A large PDF cut into runs of pages, each a PDF of its own that one invocation can OCR; and put back together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pikepdf

from common.engine import hocr
from common.engine.pdf.document import PdfDocument
from common.engine.pdf.searchable import join_pages
from common.errors import CorruptDocument


@dataclass(frozen=True)
class PageRun:
    """Pages first..last (1-based, inclusive) of the document, stored as their own PDF at `path`."""

    first: int
    last: int
    path: Path


def count_pages(path: Path) -> int:
    with PdfDocument(path) as pdf:
        return pdf.page_count


def split(path: Path, pages_per_run: int, folder: Path) -> list[PageRun]:
    """Runs of `pages_per_run` pages. Pages are copied with their objects as stored (no image is encoded
    again); one run is written at a time, so the memory a run takes does not grow with the document."""
    runs: list[PageRun] = []
    try:
        with pikepdf.open(path) as source:
            total = len(source.pages)
            for number, first in enumerate(range(1, total + 1, pages_per_run)):
                last = min(total, first + pages_per_run - 1)
                out = folder / f"run-{number:05d}.pdf"
                with pikepdf.new() as run:
                    run.pages.extend(source.pages[first - 1:last])
                    run.save(out)
                runs.append(PageRun(first, last, out))
    except pikepdf.PdfError as e:
        raise CorruptDocument("the PDF could not be split into runs of pages", detail=str(e)) from e
    return runs


def join_searchable(parts: list[Path], out: Path, timeout: float) -> Path:
    """The runs' searchable PDFs as one, in order (pdfunite, in a child process)."""
    return join_pages(parts, out, timeout)


def join_hocr(parts: list[Path], out: Path) -> Path:
    """The runs' hOCR documents as one, page blocks in order, written a run at a time."""
    return hocr.merge(parts, out)
