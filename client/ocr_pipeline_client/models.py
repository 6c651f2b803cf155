"""The answers of the HTTP contract as typed records; field names are those of docs/openapi.yaml.

Each record keeps the answer it was read from in `raw`, so fields the service adds later (and `--json`) are
never lost by the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FINAL_STATES = ("completed", "failed")


@dataclass(frozen=True)
class UploadAccepted:
    job_id: str
    document_id: str
    status: str
    status_url: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UploadAccepted:
        return cls(job_id=d["job_id"], document_id=d["document_id"], status=d["status"],
                   status_url=d["status_url"], raw=d)


@dataclass(frozen=True)
class JobError:
    code: str
    message: str | None

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> JobError | None:
        return None if d is None else cls(code=d["code"], message=d.get("message"))


@dataclass(frozen=True)
class Outputs:
    """Links to a completed job's results, signed for a limited time (`OUTPUT_URL_TTL`): fetch them soon."""

    searchable_pdf: str | None
    hocr: str | None


@dataclass(frozen=True)
class ResultWarning:
    """Why a completed result may be incomplete (a stable `code`, as errors have), and the pages it concerns
    (empty for one about the whole job, such as `pdfa_fallback`)."""

    code: str
    message: str
    pages: list[int] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResultWarning:
        return cls(code=d["code"], message=d.get("message") or "", pages=list(d.get("pages") or []))


@dataclass(frozen=True)
class Callback:
    """How the job's completion webhook went: `pending`, `delivered` or `failed`, attempts made, the receiver's
    last HTTP status (None: no answer)."""

    state: str
    attempts: int
    last_code: int | None

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Callback | None:
        return None if d is None else cls(state=d["state"], attempts=d["attempts"], last_code=d.get("last_code"))


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    document_id: str
    filename: str
    content_type: str
    size_bytes: int
    source: str
    owner_id: str | None
    status: str
    lang: str
    attempts: int
    page_count: int | None
    pages_done: int
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    error: JobError | None
    text: str | None
    outputs: Outputs | None
    pages: list[dict[str, Any]] | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    # Present when the upload named a callback_url.
    callback: Callback | None = None
    # A completed job's warnings: what may be missing from its text (empty when nothing is suspected).
    warnings: list[ResultWarning] = field(default_factory=list)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATES

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobStatus:
        outputs = d.get("outputs")
        return cls(
            job_id=d["job_id"], document_id=d["document_id"], filename=d["filename"],
            content_type=d["content_type"], size_bytes=d["size_bytes"], source=d["source"],
            owner_id=d.get("owner_id"), status=d["status"], lang=d["lang"], attempts=d["attempts"],
            page_count=d.get("page_count"), pages_done=d.get("pages_done") or 0, created_at=d["created_at"],
            updated_at=d["updated_at"], started_at=d.get("started_at"), finished_at=d.get("finished_at"),
            error=JobError.from_dict(d.get("error")), text=d.get("text"),
            outputs=Outputs(outputs.get("searchable_pdf"), outputs.get("hocr")) if outputs else None,
            pages=d.get("pages"), raw=d, callback=Callback.from_dict(d.get("callback")),
            warnings=[ResultWarning.from_dict(w) for w in d.get("warnings") or []],
        )


@dataclass(frozen=True)
class DocumentListItem:
    document_id: str
    job_id: str
    filename: str
    content_type: str
    size_bytes: int
    source: str
    status: str
    page_count: int | None
    created_at: str
    owner_id: str | None
    snippet: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DocumentListItem:
        return cls(document_id=d["document_id"], job_id=d["job_id"], filename=d["filename"],
                   content_type=d["content_type"], size_bytes=d["size_bytes"], source=d["source"],
                   status=d["status"], page_count=d.get("page_count"), created_at=d["created_at"],
                   owner_id=d.get("owner_id"), snippet=d.get("snippet"), raw=d)


@dataclass(frozen=True)
class DocumentPage:
    items: list[DocumentListItem]
    total: int | None
    limit: int
    offset: int | None
    next_cursor: str | None
    ignored_terms: list[str]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DocumentPage:
        return cls(items=[DocumentListItem.from_dict(i) for i in d["items"]], total=d.get("total"),
                   limit=d["limit"], offset=d.get("offset"), next_cursor=d.get("next_cursor"),
                   ignored_terms=list(d.get("ignored_terms") or []), raw=d)
