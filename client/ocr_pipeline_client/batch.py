"""Many documents at once: upload a few at a time, follow every job to its end, save what each produced."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from ocr_pipeline_client import files
from ocr_pipeline_client.errors import ApiError, AuthenticationFailed, ClientError, Forbidden, Unreachable
from ocr_pipeline_client.inputs import Input
from ocr_pipeline_client.models import JobStatus, UploadAccepted
from ocr_pipeline_client.progress import Display
from ocr_pipeline_client.sdk import Client

# Errors that would fail every other upload the same way: stop at the first instead of repeating it per file.
FATAL = (Unreachable, AuthenticationFailed, Forbidden)
# The suffix each output is saved under, and its name on the command line (--outputs text,pdf,hocr). The
# searchable PDF is `.ocr.pdf`, never `.pdf`: saved beside a scan.pdf it would otherwise take the original's name.
SUFFIXES = {"text": ".txt", "searchable_pdf": ".ocr.pdf", "hocr": ".hocr"}
OUTPUT_NAMES = {"text": "text", "pdf": "searchable_pdf", "hocr": "hocr"}


@dataclass
class Tracked:
    """A job being followed, under the name its results are saved as."""

    job_id: str
    name: str
    # What the progress display calls it: the file as named on the command line, or the job id.
    label: str = ""
    document_id: str | None = None
    status: JobStatus | None = None
    saved: dict[str, str] = field(default_factory=dict)


@dataclass
class Refused:
    input: Input
    error: ClientError


def upload_all(client: Client, inputs: list[Input], lang: str | None, workers: int = 4,
               on_accepted: Callable[[Input, UploadAccepted], None] | None = None,
               callback_url: str | None = None, output: str | None = None) -> tuple[list[Tracked], list[Refused]]:
    """Upload every input, `workers` at a time; a refused file does not stop the others, but an unreachable
    service or a refused key stops all (raised once)."""
    names = output_names(inputs)
    accepted: dict[int, Tracked] = {}
    refused: list[Refused] = []

    def one(index: int, item: Input) -> None:
        try:
            reply = client.upload(item.path, filename=item.path.name, lang=lang, callback_url=callback_url,
                                  output=output)
        except FATAL:
            raise
        except ApiError as e:
            refused.append(Refused(item, e))
            return
        accepted[index] = Tracked(reply.job_id, names[index], item.name, reply.document_id)
        if on_accepted:
            on_accepted(item, reply)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(one, i, item) for i, item in enumerate(inputs)]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:
            # Ctrl-C: files not started stay unsent; those in flight finish, and on_accepted has told of them.
            for f in futures:
                f.cancel()
            raise
        for future in done:
            if future.exception() is not None:
                for f in futures:
                    f.cancel()
                raise future.exception()  # type: ignore[misc]
    return [accepted[i] for i in sorted(accepted)], refused


def output_names(inputs: list[Input]) -> list[str]:
    """The name each input's results are saved under: its name without the suffix (`a/scan`), or with it where
    two inputs would share one (`scan.pdf`, `scan.png`)."""
    bases = [str(Path(item.name).with_suffix("")) for item in inputs]
    return [base if bases.count(base) == 1 else item.name for base, item in zip(bases, inputs)]


def wait_all(client: Client, jobs: list[Tracked], display: Display, interval: float = 0.5,
             timeout: float | None = None, on_final: Callable[[Tracked], None] | None = None,
             sleep: Callable[[float], None] = time.sleep) -> None:
    """Poll every unfinished job until all are final (each `Tracked.status` holds its last status), calling
    `on_final` as each one ends, while its result links are fresh. Ctrl-C (KeyboardInterrupt) goes to the
    caller: the jobs carry on in the service."""
    deadline = None if timeout is None else time.monotonic() + timeout
    for job in jobs:
        display.add(job.job_id, job.label or job.name)
    while True:
        pending = [job for job in jobs if job.status is None or not job.status.is_final]
        if not pending:
            return
        for job in pending:
            job.status = client.status(job.job_id)
            display.update(job.job_id, job.status)
            if job.status.is_final and on_final:
                on_final(job)
        if all(job.status is not None and job.status.is_final for job in jobs):
            return
        if deadline is not None and time.monotonic() >= deadline:
            return
        # Many jobs poll less often each, well inside the status function's rate limit.
        sleep(max(interval, len(pending) / 40))


def targets(out_dir: Path, name: str, outputs: tuple[str, ...]) -> dict[str, Path]:
    """Where each asked output of the document saved as `name` goes under `out_dir`: {output: path}."""
    base = out_dir / name
    return {output: base.with_name(base.name + SUFFIXES[output]) for output in outputs}


def save_outputs(client: Client, job: Tracked, out_dir: Path, outputs: tuple[str, ...], force: bool = False) -> None:
    """Write a completed job's text, searchable PDF and hOCR (those asked) under `out_dir`/`job.name`; none of them
    replaces a file unless `force` (`OutputExists`, and nothing of this job is written)."""
    assert job.status is not None and job.status.status == "completed"
    paths = targets(out_dir, job.name, outputs)
    files.refuse_existing(paths.values(), force)
    next(iter(paths.values())).parent.mkdir(parents=True, exist_ok=True)
    for output, path in paths.items():
        if output == "text":
            body = (job.status.text or "").encode("utf-8")
            files.write_new(path, lambda f: f.write(body), force)
        else:
            client.download(job.status, output, path, overwrite=force)
        job.saved[output] = str(path)
