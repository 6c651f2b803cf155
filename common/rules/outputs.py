"""What a completed job leaves next to its original: the searchable PDF and the hOCR the engine wrote, stored."""

from __future__ import annotations

from common.adapters import storage
from common.config import Settings
from common.engine.recognition import Outputs

SEARCHABLE_PDF = "searchable_pdf"
HOCR = "hocr"


def result_prefix(settings: Settings, job_id: str) -> str:
    # Outside the notified prefixes, so storing results never starts another job.
    return f"{settings.results_prefix}{job_id}/"


def result_key(settings: Settings, job_id: str, name: str) -> str:
    return result_prefix(settings, job_id) + name


def store(settings: Settings, job_id: str, produced: Outputs) -> dict[str, str]:
    """Store each output the engine says it wrote; returns {output name: object key} for the job's record."""
    keys: dict[str, str] = {}
    if produced.searchable_pdf is not None:
        keys[SEARCHABLE_PDF] = result_key(settings, job_id, "searchable.pdf")
        storage.put_file(settings, keys[SEARCHABLE_PDF], produced.searchable_pdf, "application/pdf")
    if produced.hocr is not None:
        keys[HOCR] = result_key(settings, job_id, "ocr.hocr")
        storage.put_file(settings, keys[HOCR], produced.hocr, "text/vnd.hocr+html; charset=utf-8")
    return keys
