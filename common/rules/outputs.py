"""What a completed job leaves next to its original: the searchable PDF and the hOCR the engine wrote, stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.adapters import storage
from common.config import Settings
from common.engine.pdfa.result import PdfaResult
from common.engine.recognition import Outputs
from common.errors import BadRequest
from common.models import ResultWarning, WarningCode

SEARCHABLE_PDF = "searchable_pdf"
HOCR = "hocr"
# Beside the output keys in a job's record: how its PDF/A request went (PdfaResult.to_dict).
PDFA = "pdfa"


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


@dataclass(frozen=True)
class Stored:
    """What `store` put in the bucket, and how a PDF/A request went."""

    keys: dict[str, str]  # output name (SEARCHABLE_PDF, HOCR) -> object key
    pdfa: PdfaResult | None  # None unless the job asked for PDF/A and a searchable PDF was made

    def record(self) -> dict[str, Any]:
        """The job's `outputs` record: the keys, and `pdfa` ({conformant, code, reason}) when it was asked for."""
        return {**self.keys, PDFA: self.pdfa.to_dict()} if self.pdfa is not None else dict(self.keys)

    def warnings(self) -> list[ResultWarning]:
        """The job's own warnings from its outputs: a PDF/A asked for and not made, with the reason."""
        if self.pdfa is None or self.pdfa.made:
            return []
        return [ResultWarning(WarningCode.PDFA_FALLBACK,
                              f"the searchable PDF is a plain PDF, not PDF/A ({self.pdfa.code}: {self.pdfa.reason})")]


def store(settings: Settings, job_id: str, produced: Outputs, pdfa: bool = False) -> Stored:
    """Store each output the engine says it wrote, the searchable PDF made PDF/A-2b first if the job asked
    for it (upload's `output=pdfa`) and else rid of any PDF/A claim its source made, unchecked after the text
    layer was laid over it."""
    keys: dict[str, str] = {}
    result: PdfaResult | None = None
    if produced.searchable_pdf is not None:
        # Here, not at the top: `documents` imports this module (result keys) and must not load pikepdf.
        from common.engine.pdfa.make import archival, disclaim_file

        if pdfa:
            result = archival(produced.searchable_pdf)
        else:
            disclaim_file(produced.searchable_pdf)
        keys[SEARCHABLE_PDF] = result_key(settings, job_id, "searchable.pdf")
        storage.put_file(settings, keys[SEARCHABLE_PDF], produced.searchable_pdf, "application/pdf")
    if produced.hocr is not None:
        keys[HOCR] = result_key(settings, job_id, "ocr.hocr")
        storage.put_file(settings, keys[HOCR], produced.hocr, "text/vnd.hocr+html; charset=utf-8")
    return Stored(keys=keys, pdfa=result)
