"""What a completed job leaves next to its original: one searchable PDF and one hOCR file for all pages."""

from __future__ import annotations

from pathlib import Path

from common.adapters import storage
from common.config import Settings
from common.engine import hocr
from common.engine.artifacts import SEARCHABLE_PDF_NAME
from common.engine.run import run

SEARCHABLE_PDF = "searchable_pdf"
HOCR = "hocr"


def result_prefix(settings: Settings, job_id: str) -> str:
    # Outside the notified prefixes, so storing results never starts another job.
    return f"{settings.results_prefix}{job_id}/"


def result_key(settings: Settings, job_id: str, name: str) -> str:
    return result_prefix(settings, job_id) + name


def store(settings: Settings, job_id: str, artifacts: Path, timeout: float) -> dict[str, str]:
    """Merge the per-page files of `artifacts` and store the results.

    A PDF's engine run leaves the searchable PDF whole; an image's pages are joined here (pdfunite streams them).
    """
    keys: dict[str, str] = {}
    merged = artifacts / SEARCHABLE_PDF_NAME
    pdfs = sorted(artifacts.glob("page-*.pdf"))
    if pdfs and not merged.exists():
        run(["pdfunite", *map(str, pdfs), str(merged)], timeout=timeout)
    if merged.exists():
        keys[SEARCHABLE_PDF] = result_key(settings, job_id, "searchable.pdf")
        storage.put_file(settings, keys[SEARCHABLE_PDF], merged, "application/pdf")
    hocr_pages = sorted(artifacts.glob("page-*.hocr"))
    if hocr_pages:
        merged_hocr = artifacts / "ocr.hocr"
        hocr.merge(hocr_pages, merged_hocr)
        keys[HOCR] = result_key(settings, job_id, "ocr.hocr")
        storage.put_file(settings, keys[HOCR], merged_hocr, "text/vnd.hocr+html; charset=utf-8")
    return keys
