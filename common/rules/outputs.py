"""What a completed job leaves next to its original: the searchable PDF and the hOCR the engine wrote, stored."""

from __future__ import annotations

from common.adapters import storage
from common.config import Settings
from common.engine.recognition import Outputs
from common.errors import BadRequest

SEARCHABLE_PDF = "searchable_pdf"
HOCR = "hocr"


def result_prefix(settings: Settings, job_id: str) -> str:
    # Outside the notified prefixes, so storing results never starts another job.
    return f"{settings.results_prefix}{job_id}/"


def result_key(settings: Settings, job_id: str, name: str) -> str:
    return result_prefix(settings, job_id) + name


OUTPUT_CHOICES = ("pdf", "pdfa")


def wants_pdfa(settings: Settings, output: str | None) -> bool:
    """The upload's `output` parameter: `pdfa` (PDF/A-2b), `pdf`, or absent (OUTPUT_PDFA decides)."""
    if not output:
        return settings.output_pdfa
    if output not in OUTPUT_CHOICES:
        raise BadRequest(f"output must be one of {', '.join(OUTPUT_CHOICES)}, not {output[:20]!r}")
    return output == "pdfa"


def store(settings: Settings, job_id: str, produced: Outputs, pdfa: bool = False) -> dict[str, str]:
    """Store each output the engine says it wrote, the searchable PDF made PDF/A-2b first if the job asked
    for it (upload's `output=pdfa`); returns {output name: object key} for the job's record."""
    keys: dict[str, str] = {}
    if produced.searchable_pdf is not None:
        if pdfa:
            # Here, not at the top: `documents` imports this module (result keys) and must not load pikepdf.
            from common.engine.pdfa import archival

            archival(produced.searchable_pdf)
        keys[SEARCHABLE_PDF] = result_key(settings, job_id, "searchable.pdf")
        storage.put_file(settings, keys[SEARCHABLE_PDF], produced.searchable_pdf, "application/pdf")
    if produced.hocr is not None:
        keys[HOCR] = result_key(settings, job_id, "ocr.hocr")
        storage.put_file(settings, keys[HOCR], produced.hocr, "text/vnd.hocr+html; charset=utf-8")
    return keys
