"""`Client(url, api_key)`: the service's HTTP contract (docs/openapi.yaml) as typed Python calls."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from ocr_pipeline_client import files
from ocr_pipeline_client.errors import DownloadUnsupported, JobFailed, NotFound, OutputMissing, WaitTimeout
from ocr_pipeline_client.models import DocumentListItem, DocumentPage, JobStatus, UploadAccepted
from ocr_pipeline_client.transport import RetryPolicy, Transport

# What `download` fetches, and the suffix of the name each is saved under when only a folder is given (the
# searchable PDF is `.ocr.pdf`: saved beside a scan.pdf it must not take the original's name).
KINDS = ("text", "pdf", "hocr", "original")
SUFFIXES = {"text": ".txt", "pdf": ".ocr.pdf", "hocr": ".hocr", "original": ""}
# The names of `outputs` in a status, also taken as kinds; and where a service without the route links each.
ALIASES = {"searchable_pdf": "pdf"}
OUTPUT_LINKS = {"pdf": "searchable_pdf", "hocr": "hocr"}
# The code of the documents function's answer to a path it does not know: the download route is missing.
ROUTE_MISSING = "not_found"
# The filters `list` takes, by their names in the contract.
LIST_FILTERS = ("filename", "content_type", "status", "date_from", "date_to", "sort", "q", "owner")


class Client:
    """A client of one service with one API key. Thread-safe: the CLI uploads a few files at a time with one."""

    def __init__(self, url: str, api_key: str | None, *, timeout: float = 60.0, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[str, float], None] | None = None) -> None:
        self.url = url.rstrip("/")
        self._sleep = sleep
        self.transport = Transport(self.url, api_key, timeout, retry, sleep, on_retry)
        # Whether the service has the download route: unknown (None) until the first download says.
        self._download_route: bool | None = None

    # --- documents in -----------------------------------------------------------------------------------------

    def upload(self, file: str | os.PathLike[str] | bytes | IO[bytes], *, filename: str | None = None,
               lang: str | None = None, idempotency_key: str | None = None,
               callback_url: str | None = None, output: str | None = None) -> UploadAccepted:
        """Send a document (a path, its bytes, or an open binary file) as the raw body; answers once it is
        stored and its job is `pending`. With `callback_url`, the service POSTs a signed event there when the
        job ends (check it with ocr_pipeline_client.webhooks.verify). `output="pdfa"` asks for a PDF/A-2b searchable
        PDF, `"pdf"` for a plain one (absent: the service's OUTPUT_PDFA)."""
        headers = {"Content-Type": "application/octet-stream"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if isinstance(file, (str, os.PathLike)):
            path = Path(file)
            with path.open("rb") as f:
                # Streamed from disk: the length is known, so urllib3 sends it without reading it all in.
                headers["Content-Length"] = str(os.fstat(f.fileno()).st_size)
                return self._upload(f, filename or path.name, lang, headers, callback_url, output)
        if filename is None:
            filename = getattr(file, "name", None)
            filename = Path(filename).name if isinstance(filename, str) else "document"
        if not isinstance(file, bytes) and file.seekable():
            # A known length, not a chunked body: the size limit is checked up front, and proxies expect it.
            start = file.tell()
            headers["Content-Length"] = str(file.seek(0, os.SEEK_END) - start)
            file.seek(start)
        return self._upload(file, filename, lang, headers, callback_url, output)

    def _upload(self, body: bytes | IO[bytes], filename: str, lang: str | None, headers: dict[str, str],
                callback_url: str | None, output: str | None) -> UploadAccepted:
        query = {"filename": filename, "lang": lang, "callback_url": callback_url, "output": output}
        response = self.transport.request("POST", "/function/upload", query, body, headers)
        return UploadAccepted.from_dict(response.json())

    def reprocess(self, document_id: str, *, lang: str | None = None) -> UploadAccepted:
        response = self.transport.request("POST", f"/function/documents/{_id(document_id)}/reprocess",
                                          {"lang": lang})
        return UploadAccepted.from_dict(response.json())

    # --- jobs -------------------------------------------------------------------------------------------------

    def status(self, job_id: str, *, include: str | None = None) -> JobStatus:
        """The job's state and progress (`pages_done` of `page_count`); its text and output links once completed.
        A document id reads the document's current job (the one whose result it shows). `include` is `pages`
        or `words`."""
        response = self.transport.request("GET", f"/function/status/{_id(job_id)}", {"include": include})
        return JobStatus.from_dict(response.json())

    def wait(self, job_id: str, *, timeout: float | None = None, interval: float = 0.5,
             on_progress: Callable[[JobStatus], None] | None = None, raise_on_failure: bool = False) -> JobStatus:
        """Poll until the job is `completed` or `failed` and return its last status. `on_progress` sees every
        status read; `raise_on_failure` turns a failed job into `JobFailed` with the job's error code."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = self.status(job_id)
            if on_progress:
                on_progress(current)
            if current.is_final:
                if raise_on_failure and current.status == "failed":
                    error = current.error
                    raise JobFailed(job_id, error.code if error else "failed",
                                    (error.message if error else None) or "the job failed")
                return current
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"job {job_id} is still {current.status} after {timeout:g} s")
            self._sleep(interval)

    def text(self, job_id: str) -> str:
        """A completed job's text (pages separated by "\\n\\f\\n"); `Conflict` (`job_not_completed`) before.
        A document id reads its current job's."""
        response = self.transport.request("GET", f"/function/status/{_id(job_id)}", {"format": "text"})
        return response.body.decode("utf-8")

    def download(self, job: str | JobStatus, kind: str, dest: str | os.PathLike[str] | IO[bytes], *,
                 overwrite: bool = False) -> Downloaded:
        """Save a completed job's `text`, searchable `pdf`, `hocr` or the `original` file to a path, into a folder
        (under the name the service gives: `scan.txt`, `scan.ocr.pdf`, `scan.hocr`, `scan.pdf`) or to a binary
        file. A file is written whole or not at all, and one that exists raises `OutputExists` and is left as
        it is, unless `overwrite`. `job` is a job id, a document id (its current job) or a status just read.

        Through the API's download route, with this client's key; a service older than that route gets the
        text from the job's status and the PDF and hOCR from its signed links (it has no way to the original:
        `DownloadUnsupported`)."""
        kind = _kind(kind)
        path = Path(dest) if isinstance(dest, (str, os.PathLike)) else None
        if path is not None and not path.is_dir():
            # Before the download: a file that cannot be saved costs no transfer.
            files.refuse_existing([path], overwrite)
        if self._download_route is not False:
            job_id = job.job_id if isinstance(job, JobStatus) else job
            try:
                with self.transport.stream(f"/function/documents/{_id(job_id)}/download/{kind}") as answer:
                    self._download_route = True
                    named = files.attachment_name(answer.headers.get("Content-Disposition"))
                    fallback = (result_name(job.filename, SUFFIXES[kind]) if isinstance(job, JobStatus)
                                else job_id + SUFFIXES[kind])
                    return self._save(answer.copy_to, path, dest, named or fallback, overwrite)
            except NotFound as e:
                if e.code == OutputMissing.code:
                    # The same meaning as a status without the link: one error to catch, whichever path was taken.
                    raise OutputMissing(e.message, e.code, e.http_status, e.request_id) from e
                # The route's own 404 (`not_found`): a service from before it. Any other code is the answer.
                if e.code != ROUTE_MISSING or self._download_route:
                    raise
                self._download_route = False
        return self._download_from_status(job, kind, path, dest, overwrite)

    def _download_from_status(self, job: str | JobStatus, kind: str, path: Path | None,
                              dest: str | os.PathLike[str] | IO[bytes], overwrite: bool) -> Downloaded:
        """What a service without the download route offers: the status's text and its signed output links,
        read fresh for an id (they expire), as they are for a status given."""
        current = self.status(job) if isinstance(job, str) else job
        if kind == "original":
            raise DownloadUnsupported(f"the service at {self.url} has no download route, and its status holds no "
                                      "link to the original")
        if current.status != "completed":
            raise OutputMissing(f"job {current.job_id} is {current.status}; it has no {kind} to download")
        name = result_name(current.filename, SUFFIXES[kind])
        if kind == "text":
            body = (current.text or "").encode("utf-8")
            return self._save(lambda out: out.write(body), path, dest, name, overwrite)
        link = getattr(current.outputs, OUTPUT_LINKS[kind], None) if current.outputs else None
        if not link:
            raise OutputMissing(f"job {current.job_id} has no {kind} to download")
        return self._save(lambda out: self.transport.download(link, out), path, dest, name, overwrite)

    @staticmethod
    def _save(write: Callable[[IO[bytes]], int], path: Path | None, dest: str | os.PathLike[str] | IO[bytes],
              name: str, overwrite: bool) -> Downloaded:
        if path is None:
            return Downloaded(None, write(dest))  # type: ignore[arg-type]
        if path.is_dir():
            path = path / name
            files.refuse_existing([path], overwrite)
        return Downloaded(path, files.write_new(path, write, overwrite))

    # --- the library ------------------------------------------------------------------------------------------

    def list(self, *, limit: int | None = None, offset: int | None = None, cursor: str | None = None,
             **filters: str | None) -> DocumentPage:
        """One page of documents, newest first unless `sort=created_at_asc`; filters by their contract names
        (`filename`, `content_type`, `status`, `date_from`, `date_to`, `sort`, `q`, `owner`)."""
        return self._page({"limit": limit, "offset": offset, "cursor": cursor}, filters)

    def _page(self, paging: dict[str, Any], filters: dict[str, str | None]) -> DocumentPage:
        unknown = set(filters) - set(LIST_FILTERS)
        if unknown:
            raise TypeError(f"unknown list filter(s): {', '.join(sorted(unknown))}; known: {', '.join(LIST_FILTERS)}")
        return DocumentPage.from_dict(self.transport.request("GET", "/function/list", {**paging, **filters}).json())

    def iter_documents(self, *, page_size: int = 100, **filters: str | None) -> Iterator[DocumentListItem]:
        """Every document matching the filters, following `next_cursor` (keyset paging: nothing repeated or
        skipped while documents arrive)."""
        cursor: str | None = None
        while True:
            page = self._page({"limit": page_size, "cursor": cursor}, filters)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def document(self, document_id: str) -> dict[str, Any]:
        """One document with every job it has had (`DocumentDetail`)."""
        result: dict[str, Any] = self.transport.request("GET", f"/function/documents/{_id(document_id)}").json()
        return result

    def delete(self, document_id: str) -> None:
        """Delete a document, its original and everything made from it; `NotFound` if there is none."""
        self.transport.request("DELETE", f"/function/documents/{_id(document_id)}")


@dataclass(frozen=True)
class Downloaded:
    """Where a download was saved (None when written to a file object) and how many bytes it has."""

    path: Path | None
    size: int


def _kind(kind: str) -> str:
    kind = ALIASES.get(kind, kind)
    if kind not in KINDS:
        raise ValueError(f"unknown download kind {kind!r}; choose from {', '.join(KINDS)}")
    return kind


def result_name(filename: str, suffix: str) -> str:
    """`scan.pdf` -> `scan.ocr.pdf` / `scan.hocr` / `scan.txt`: the document's own name (never a folder of it)
    with the result's suffix; with no suffix (the original), the name itself."""
    name = Path(filename).name
    if not suffix and name not in ("", ".", ".."):
        return name
    stem = Path(name).stem if name not in ("", ".", "..") else ""
    return (stem or "document") + suffix


def _id(value: str) -> str:
    # Ids go into the path: a slash or `?` in one must not reach another route.
    return quote(value, safe="")
