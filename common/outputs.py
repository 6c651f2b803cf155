"""What a completed job leaves next to its original: one searchable PDF and one hOCR file for all pages."""

from __future__ import annotations

import re
from pathlib import Path

from common import storage
from common.config import Settings
from common.ocr import SEARCHABLE_PDF_NAME
from common.process import run

SEARCHABLE_PDF = "searchable_pdf"
HOCR = "hocr"

_BODY = re.compile(rb"<body>(.*)</body>", re.DOTALL)


def result_key(settings: Settings, job_id: str, name: str) -> str:
    # Outside the notified prefixes, so storing results never starts another job.
    return f"{settings.results_prefix}{job_id}/{name}"


def merge_hocr(pages: list[Path], out: Path) -> None:
    """One hOCR document: the first page's head, then every page's ocr_page block in order."""
    parts = [p.read_bytes() for p in pages]
    head = parts[0].split(b"<body>", 1)[0]
    bodies = [m.group(1) for m in (_BODY.search(part) for part in parts) if m]
    out.write_bytes(head + b"<body>" + b"".join(bodies) + b"</body>\n</html>\n")


def store(settings: Settings, job_id: str, artifacts: Path, timeout: float) -> dict[str, str]:
    """Merge the per-page files of `artifacts` (pdfunite streams them) and store the results."""
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
        merge_hocr(hocr_pages, merged_hocr)
        keys[HOCR] = result_key(settings, job_id, "ocr.hocr")
        storage.put_file(settings, keys[HOCR], merged_hocr, "text/vnd.hocr+html; charset=utf-8")
    return keys
