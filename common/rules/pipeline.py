"""ocr-process as a recipe: parse event -> find job -> claim -> fetch -> recognise pages -> store -> finish."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.adapters import storage
from common.adapters.db import Document
from common.config import Settings
from common.engine import scratch
from common.engine.language.installed import validate_lang
from common.engine.media import media_type_of
from common.engine.ocr import OcrLimits, TesseractEngine
from common.engine.recognition import OcrEngine
from common.errors import PipelineError
from common.logging import bind_context, get_logger
from common.rules import chunks, intake, jobs, outputs, webhooks
from common.rules.events import parse_event

log = get_logger()


class Result(str, enum.Enum):
    """What one invocation of ocr-process came to, as its answer says."""

    COMPLETED = "completed"
    FAILED = "failed"
    DUPLICATE = "duplicate"  # nothing to do: final already, taken over, or another worker holds it
    REJECTED = "rejected"  # a bad event: recorded as a failed job, never retried
    RETRY = "retry"  # an outage: the queue tries again
    FANNED_OUT = "fanned_out"
    CHUNK_DONE = "chunk_done"


@dataclass(frozen=True)
class Outcome:
    job_id: str | None
    result: Result
    error_code: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"job_id": self.job_id, "result": self.result.value, "error_code": self.error_code}


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

    Only retryable failures (a service outage, a job another worker holds) and the service's own errors
    (see _not_the_events_fault) propagate, so the caller
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
            job_ids.append(intake.job_for_object(settings, obj))
        except PipelineError as e:
            if _not_the_events_fault(e):
                retry = e
            else:
                log.warning("event.rejected", key=obj.key, error_code=e.code, error=str(e))
                outcomes.append(Outcome(job_id=obj.job_id, result=Result.REJECTED, error_code=e.code))
    work: list[tuple[str, Callable[[], Outcome]]] = [
        *((job_id, functools.partial(process_job, settings, job_id, engine)) for job_id in job_ids),
        *((job_id, functools.partial(process_chunk, settings, job_id, number, engine))
          for job_id, number in event.chunks),
    ]
    for job_id, run in work:
        try:
            outcomes.append(run())
        except PipelineError as e:
            if not _not_the_events_fault(e):
                outcomes.append(Outcome(job_id=job_id, result=Result.REJECTED, error_code=e.code))
                continue
            retry = e
            outcomes.append(Outcome(job_id=job_id, result=Result.RETRY, error_code=e.code))
    if retry is not None:
        raise retry
    return outcomes


def _not_the_events_fault(error: PipelineError) -> bool:
    """Retryable errors, and the service's own (a 5xx such as config_invalid: a schema behind the code): the
    delivery is answered non-2xx so the queue keeps it, instead of being dropped as a bad event."""
    return error.retryable or error.http_status >= 500


def _bind(claim: jobs.Claim) -> None:
    bind_context(job_id=claim.job_id, document_id=claim.document.id)
    if claim.request_id:
        # The upload's request id, so one id follows the document from upload to its OCR lines.
        bind_context(request_id=claim.request_id)


def process_job(settings: Settings, job_id: str, engine: OcrEngine) -> Outcome:
    bind_context(job_id=job_id)
    claim = jobs.claim(settings, job_id)
    if claim is None:
        return Outcome(job_id=job_id, result=Result.DUPLICATE)
    _bind(claim)
    total, done = chunks.state(settings, job_id)
    if total and done == total:
        # Every chunk was read, and the worker that took the job to put it together died: assemble now.
        return _assemble(settings, claim)
    return _settled(settings, claim, lambda tmp: _recognise(settings, claim, engine, tmp))


def _recognise(settings: Settings, claim: jobs.Claim, engine: OcrEngine, tmp: Path) -> Outcome | outputs.Stored:
    """The document read in this call (its stored outputs), or fanned out to chunks (an Outcome)."""
    path = _fetch(settings, claim.document, tmp)
    media_type = _media_type_of(path)
    lang = validate_lang(claim.lang)
    count = chunks.pages_to_split(settings, path, media_type)
    if count is not None:
        fanned = chunks.fan_out(settings, claim, path, count, tmp)
        return Outcome(job_id=claim.job_id, result=Result.FANNED_OUT if fanned else Result.DUPLICATE)
    # The engine writes the document's outputs here and says which it wrote once every page is read.
    output_dir = tmp / "outputs"
    output_dir.mkdir()
    with engine.recognise(path, media_type, lang, lambda n: jobs.set_page_count(settings, claim, n),
                          output_dir) as recognition:
        # Each page is recorded as it is read: memory stays flat and progress exact.
        for page in recognition:
            if not jobs.record_page(settings, claim, page):
                return Outcome(job_id=claim.job_id, result=Result.DUPLICATE)
    return outputs.store(settings, claim.job_id, recognition.outputs, pdfa=claim.pdfa)


def _settled(settings: Settings, claim: jobs.Claim, work: Callable[[Path], Outcome | outputs.Stored]) -> Outcome:
    """Run `work` under the job's lease in a folder of its own, then complete or fail the job by what it gave."""
    job_id = claim.job_id
    try:
        with jobs.lease_kept(settings, claim), scratch.job_dir("ocr-job-") as tmp:
            stored = work(Path(tmp))
        if isinstance(stored, Outcome):
            return stored
        if not jobs.complete(settings, claim, stored.record(), stored.warnings()):
            # The claim was lost meanwhile (the document deleted, or the lease taken over): results
            # stored under this job's prefix must not outlive it.
            if jobs.was_cancelled(settings, job_id):
                storage.remove_prefix(settings, outputs.result_prefix(settings, job_id))
            return Outcome(job_id=job_id, result=Result.DUPLICATE)
        webhooks.deliver_quietly(settings, job_id)
        return Outcome(job_id=job_id, result=Result.COMPLETED)
    except PipelineError as e:
        log.warning("job.error", error_code=e.code, error=str(e), retryable=e.retryable)
        jobs.fail(settings, claim, e)
        webhooks.deliver_quietly(settings, job_id)  # owed only if that failure was the job's last
        if e.retryable:
            raise
        return Outcome(job_id=job_id, result=Result.FAILED, error_code=e.code)
    except Exception as e:
        # A bug must not become a poison event that the queue redelivers forever: fail the job, keep the trace.
        log.exception("job.crashed")
        jobs.fail(settings, claim, PipelineError("internal error; see the ocr-process log",
                                                 detail=f"{type(e).__name__}: {e}"))
        webhooks.deliver_quietly(settings, job_id)
        return Outcome(job_id=job_id, result=Result.FAILED, error_code=PipelineError.code)


def process_chunk(settings: Settings, job_id: str, number: int, engine: OcrEngine) -> Outcome:
    """One run of a fanned-out document's pages (rules/chunks.py); the last one to finish assembles the job."""
    bind_context(job_id=job_id, chunk=number)
    cc = chunks.claim(settings, job_id, number)
    if cc is None:
        return Outcome(job_id=job_id, result=Result.DUPLICATE)
    if cc.request_id:
        bind_context(request_id=cc.request_id)
    try:
        with chunks.lease_kept(settings, cc), scratch.job_dir("ocr-chunk-") as tmp:
            path = chunks.run_path(settings, cc, Path(tmp))
            output_dir = Path(tmp) / "outputs"
            output_dir.mkdir()
            # The page count is the document's, set when it was split: the run's own is not reported.
            with engine.recognise(path, "application/pdf", validate_lang(cc.lang), lambda _n: None,
                                  output_dir) as recognition:
                for page in recognition:
                    if not chunks.record_page(settings, cc, page):
                        return Outcome(job_id=job_id, result=Result.DUPLICATE)
            chunks.store_outputs(settings, cc, recognition.outputs)
    except PipelineError as e:
        log.warning("chunk.error", error_code=e.code, error=str(e), retryable=e.retryable)
        if e.retryable:
            chunks.release(settings, cc)
            raise
        return _fail_fanned_out(settings, job_id, e)
    except Exception as e:
        log.exception("chunk.crashed")
        return _fail_fanned_out(settings, job_id, PipelineError("internal error; see the ocr-process log",
                                                                 detail=f"{type(e).__name__}: {e}"))
    assembler = chunks.finish(settings, cc)
    if assembler is None:
        return Outcome(job_id=job_id, result=Result.CHUNK_DONE)
    _bind(assembler)
    return _assemble(settings, assembler)


def _fail_fanned_out(settings: Settings, job_id: str, error: PipelineError) -> Outcome:
    """A chunk that fails for good fails its job with its code; the other chunks then find the job final."""
    jobs.fail_unclaimed(settings, job_id, error)
    webhooks.deliver_quietly(settings, job_id)
    return Outcome(job_id=job_id, result=Result.FAILED, error_code=error.code)


def _assemble(settings: Settings, claim: jobs.Claim) -> Outcome:
    outcome = _settled(settings, claim, lambda tmp: outputs.store(
        settings, claim.job_id, chunks.assemble(settings, claim.job_id, tmp), pdfa=claim.pdfa))
    if outcome.result == Result.COMPLETED:
        chunks.clean_up(settings, claim.job_id)
    return outcome


def _fetch(settings: Settings, document: Document, workdir: Path) -> Path:
    path = workdir / "original"
    storage.download_to(settings, document.bucket, document.object_key, path)
    return path


def _media_type_of(path: Path) -> str:
    """Decided from the bytes: a dropped file's name and Content-Type are only claims."""
    with path.open("rb") as f:
        return media_type_of(f, "the object")
