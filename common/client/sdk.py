"""`Client(url, api_key)`: the service's HTTP contract (docs/openapi.yaml) as typed Python calls."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import quote

from common.client import files
from common.client.errors import JobFailed, OutputMissing, WaitTimeout
from common.client.models import DocumentListItem, DocumentPage, JobStatus, UploadAccepted
from common.client.transport import RetryPolicy, Transport

Output = Literal["searchable_pdf", "hocr"]
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

    # --- documents in -----------------------------------------------------------------------------------------

    def upload(self, file: str | os.PathLike[str] | bytes | IO[bytes], *, filename: str | None = None,
               lang: str | None = None, idempotency_key: str | None = None,
               callback_url: str | None = None, output: str | None = None) -> UploadAccepted:
        """Send a document (a path, its bytes, or an open binary file) as the raw body; answers once it is
        stored and its job is `pending`. With `callback_url`, the service POSTs a signed event there when the
        job ends (check it with common.client.webhooks.verify). `output="pdfa"` asks for a PDF/A-2b searchable
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

    def download(self, job: str | JobStatus, output: Output, dest: str | os.PathLike[str] | IO[bytes], *,
                 overwrite: bool = False) -> int:
        """Save a completed job's searchable PDF or hOCR to a path (written whole or not at all) or a binary
        file; returns the bytes written. A path that exists raises `OutputExists` and is left as it is, unless
        `overwrite`. Given a job id (or a document id: its current job), its links are read fresh (they
        expire); given a status just read, its links are used as they are."""
        if isinstance(dest, (str, os.PathLike)):
            # Before the download: a file that cannot be saved costs no transfer.
            files.refuse_existing([Path(dest)], overwrite)
        current = self.status(job) if isinstance(job, str) else job
        link = getattr(current.outputs, output, None) if current.outputs else None
        if current.status != "completed" or not link:
            raise OutputMissing(f"job {current.job_id} is {current.status}; it has no {output} to download")
        if not isinstance(dest, (str, os.PathLike)):
            return self.transport.download(link, dest)
        return files.write_new(Path(dest), lambda f: self.transport.download(link, f), overwrite)

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


def _id(value: str) -> str:
    # Ids go into the path: a slash or `?` in one must not reach another route.
    return quote(value, safe="")
