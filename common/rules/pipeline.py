"""ocr-process as a recipe: parse event -> find job -> claim -> fetch -> recognise pages -> store -> finish."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.adapters import storage
from common.adapters.db import Document
from common.config import Settings
from common.engine import scratch
from common.engine.languages import validate_lang
from common.engine.media import media_type_of
from common.engine.ocr import OcrLimits, TesseractEngine
from common.engine.recognition import OcrEngine
from common.errors import PipelineError
from common.logging import bind_context, get_logger
from common.rules import documents, jobs, outputs
from common.rules.events import parse_event

log = get_logger()


@dataclass(frozen=True)
class Outcome:
    job_id: str | None
    result: str  # completed | failed | duplicate | rejected | retry
    error_code: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"job_id": self.job_id, "result": self.result, "error_code": self.error_code}


def default_engine(settings: Settings) -> OcrEngine:
    return TesseractEngine(
        OcrLimits(
            max_pages=settings.max_pages,
            max_page_pixels=settings.max_page_pixels,
            page_timeout=settings.ocr_page_timeout,
            dpi=settings.ocr_dpi,
            workers=settings.ocr_workers,
            clean_up=settings.ocr_clean_up,
        )
    )


def process_event(settings: Settings, body: bytes, engine: OcrEngine) -> list[Outcome]:
    """Handle every record of one delivery; a bad record becomes a rejected outcome, never an exception.

    Only retryable failures (a service outage, a job another worker holds) propagate, so the caller
    answers non-2xx and the queue delivers again later.
    """
    # This worker's temporary folder, opened (and dead workers' folders swept) before the first job.
    scratch.worker_dir()
    event = parse_event(body)
    outcomes: list[Outcome] = []
    retry: PipelineError | None = None
    job_ids = list(event.job_ids)
    for obj in event.objects:
        try:
            job_ids.append(documents.job_for_object(settings, obj))
        except PipelineError as e:
            if e.retryable:
                retry = e
            else:
                log.warning("event.rejected", key=obj.key, error_code=e.code, error=str(e))
                outcomes.append(Outcome(job_id=obj.job_id, result="rejected", error_code=e.code))
    for job_id in job_ids:
        try:
            outcomes.append(process_job(settings, job_id, engine))
        except PipelineError as e:
            if not e.retryable:
                outcomes.append(Outcome(job_id=job_id, result="rejected", error_code=e.code))
                continue
            retry = e
            outcomes.append(Outcome(job_id=job_id, result="retry", error_code=e.code))
    if retry is not None:
        raise retry
    return outcomes


def process_job(settings: Settings, job_id: str, engine: OcrEngine) -> Outcome:
    bind_context(job_id=job_id)
    claim = jobs.claim(settings, job_id)
    if claim is None:
        return Outcome(job_id=job_id, result="duplicate")
    bind_context(document_id=claim.document.id)
    if claim.request_id:
        # The upload's request id, so one id follows the document from upload to its OCR lines.
        bind_context(request_id=claim.request_id)
    try:
        with jobs.lease_kept(settings, claim), scratch.job_dir("ocr-job-") as tmp:
            path = _fetch(settings, claim.document, Path(tmp))
            media_type = _media_type_of(path)
            lang = validate_lang(claim.lang)
            # The engine writes the document's outputs here and says which it wrote once every page is read.
            output_dir = Path(tmp) / "outputs"
            output_dir.mkdir()
            with engine.recognise(path, media_type, lang, lambda n: jobs.set_page_count(settings, claim, n),
                                  output_dir) as recognition:
                # Each page is recorded as it is read: memory stays flat and progress exact.
                for page in recognition:
                    if not jobs.record_page(settings, claim, page):
                        return Outcome(job_id=job_id, result="duplicate")
            stored = outputs.store(settings, job_id, recognition.outputs)
        if not jobs.complete(settings, claim, stored):
            # The claim was lost meanwhile (the document deleted, or the lease taken over): results
            # stored under this job's prefix must not outlive it.
            if jobs.was_cancelled(settings, job_id):
                storage.remove_prefix(settings, outputs.result_prefix(settings, job_id))
            return Outcome(job_id=job_id, result="duplicate")
        return Outcome(job_id=job_id, result="completed")
    except PipelineError as e:
        log.warning("job.error", error_code=e.code, error=str(e), retryable=e.retryable)
        jobs.fail(settings, claim, e)
        if e.retryable:
            raise
        return Outcome(job_id=job_id, result="failed", error_code=e.code)
    except Exception as e:
        # A bug must not become a poison event that the queue redelivers forever: fail the job, keep the trace.
        log.exception("job.crashed")
        jobs.fail(settings, claim, PipelineError("internal error; see the ocr-process log",
                                                 detail=f"{type(e).__name__}: {e}"))
        return Outcome(job_id=job_id, result="failed", error_code=PipelineError.code)


def _fetch(settings: Settings, document: Document, workdir: Path) -> Path:
    path = workdir / "original"
    storage.download_to(settings, document.bucket, document.object_key, path)
    return path


def _media_type_of(path: Path) -> str:
    """Decided from the bytes: a dropped file's name and Content-Type are only claims."""
    with path.open("rb") as f:
        return media_type_of(f, "the object")
