"""Records shared across layers: job states, page results and words, who is calling. No service, no engine."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any


class JobStatus(str, enum.Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)


class ChunkStatus(str, enum.Enum):
    """A run of a fanned-out job's pages (common/rules/chunks.py)."""

    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"


class CallbackState(str, enum.Enum):
    """How a job's completion webhook stands: owed, delivered, or given up after its attempts."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class Word:
    text: str
    confidence: float | None  # None for a word taken from a PDF's text layer: nobody recognised it
    left: int
    top: int
    width: int
    height: int
    line: int | None = None  # index of its line in the page's `lines`
    # Its four corners on the page as scanned, for a page read turned (top-left, top-right, bottom-right,
    # bottom-left as read); the box above is the upright box around them.
    polygon: list[list[int]] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text, "confidence": self.confidence, "left": self.left, "top": self.top,
            "width": self.width, "height": self.height}
        if self.line is not None:
            out["line"] = self.line
        if self.polygon is not None:
            out["polygon"] = self.polygon
        return out


@dataclass(frozen=True)
class Line:
    """A line of words as read: its box in the page's pixels, and the block and paragraph it belongs to."""

    text: str
    confidence: float | None  # mean of its words'; None for a text-layer line
    left: int
    top: int
    width: int
    height: int
    block: int
    paragraph: int
    polygon: list[list[int]] | None = None  # as a word's

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text, "confidence": self.confidence, "left": self.left, "top": self.top,
            "width": self.width, "height": self.height, "block": self.block, "paragraph": self.paragraph}
        if self.polygon is not None:
            out["polygon"] = self.polygon
        return out


class WarningCode(str, enum.Enum):
    """Why a result may be incomplete or not what was asked for: stable codes, as errors have."""

    EMPTY_PAGE = "empty_page"  # no ink and no text: a blank page, or one scanned too light
    INK_WITHOUT_TEXT = "ink_without_text"  # ink that looks like text where no word was recognised
    LOW_CONFIDENCE = "low_confidence"  # the words were read, but tesseract is unsure of them
    TEXT_LAYER_REJECTED = "text_layer_rejected"  # the page's own text layer was garbled: it was OCRed
    PDFA_FALLBACK = "pdfa_fallback"  # PDF/A was asked for; the searchable PDF could not be made one


@dataclass(frozen=True)
class ResultWarning:
    code: WarningCode
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "message": self.message}


@dataclass(frozen=True)
class PageResult:
    number: int
    text: str
    confidence: float | None
    method: str  # "ocr" or "text_layer"
    width: int | None  # pixels of the OCRed raster; a text-layer page's size at OCR_DPI (its words' frame)
    height: int | None
    duration_ms: int
    rotation: int = 0  # degrees the page was turned clockwise before OCR
    words: list[Word] = field(default_factory=list)  # words with their boxes in the page's pixels (width x height)
    lines: list[Line] = field(default_factory=list)
    text_layer_rejected: str | None = None  # why the page's own text layer was not used, when it had one
    skew: float = 0.0  # degrees the page's lines leaned anticlockwise (after `rotation`), taken out before OCR
    warnings: list[ResultWarning] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)  # what lang=auto detected on the page

    def layout_json(self) -> str | None:
        """What a page stores besides its text: words, lines, the layer verdict, skew and detected languages."""
        if not (self.words or self.lines or self.text_layer_rejected or self.skew or self.languages):
            return None
        stored: dict[str, Any] = {"words": [w.to_dict() for w in self.words],
                                  "lines": [line.to_dict() for line in self.lines],
                                  "text_layer_rejected": self.text_layer_rejected}
        if self.skew:
            stored["skew"] = self.skew
        if self.languages:
            stored["languages"] = self.languages
        return json.dumps(stored, ensure_ascii=False)

    def warnings_json(self) -> str | None:
        """The page's warnings as stored in their own column, so a job's are gathered without its words."""
        return json.dumps([w.to_dict() for w in self.warnings]) if self.warnings else None


class Role(str, enum.Enum):
    ADMIN = "admin"
    USER = "user"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a verified key, or the whole trusted network when AUTH=off."""

    key_id: str | None
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def owner_filter(self) -> str | None:
        """The owner every read must be limited to; None means all documents (admins)."""
        return None if self.is_admin else self.key_id


# AUTH=off: everyone is trusted with everything, and new documents have no owner.
TRUSTED = Principal(key_id=None, role=Role.ADMIN)


# What the schema's bounded columns hold (common/adapters/db/schema.py sizes them with these), so every input
# that lands in one is checked against the same number at the edge and refused with a 400 naming it.
# A file name is also one segment of the object key, which MinIO caps at 255 bytes: bytes, not characters.
MAX_FILENAME_BYTES = 255
MAX_LANG_CHARS = 64
MAX_REQUEST_ID_CHARS = 64
MAX_CONTENT_TYPE_CHARS = 100
MAX_ETAG_CHARS = 80
MAX_BUCKET_CHARS = 63
MAX_OBJECT_KEY_BYTES = 1024

# Room for multipart boundaries and form fields around an uploaded file: a request may be this much larger
# than MAX_UPLOAD_BYTES. The gateway and the upload function refuse a body past the same sum.
UPLOAD_FORM_ROOM_BYTES = 64 * 1024


@dataclass(frozen=True)
class Accepted:
    """An upload taken in: its job and document, as the 202 answers them."""

    job_id: str
    document_id: str
    status: str

    def status_url(self, base_url: str) -> str:
        return f"{base_url}/function/status/{self.job_id}"

    def to_dict(self, base_url: str) -> dict[str, str]:
        return {"job_id": self.job_id, "document_id": self.document_id, "status": self.status,
                "status_url": self.status_url(base_url)}
