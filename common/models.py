"""Records shared across layers: job states, page results and words, who is calling. No service, no engine."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field


class JobStatus(str, enum.Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)


@dataclass(frozen=True)
class Word:
    text: str
    confidence: float | None  # None for a word taken from a PDF's text layer: nobody recognised it
    left: int
    top: int
    width: int
    height: int
    line: int | None = None  # index of its line in the page's `lines`

    def to_dict(self) -> dict[str, str | float | int | None]:
        out: dict[str, str | float | int | None] = {
            "text": self.text, "confidence": self.confidence, "left": self.left, "top": self.top,
            "width": self.width, "height": self.height}
        if self.line is not None:
            out["line"] = self.line
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

    def to_dict(self) -> dict[str, str | float | int | None]:
        return {"text": self.text, "confidence": self.confidence, "left": self.left, "top": self.top,
                "width": self.width, "height": self.height, "block": self.block, "paragraph": self.paragraph}


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

    def layout_json(self) -> str | None:
        """What a page stores besides its text: words, lines and the layer verdict, as one JSON object."""
        if not (self.words or self.lines or self.text_layer_rejected):
            return None
        return json.dumps({"words": [w.to_dict() for w in self.words], "lines": [line.to_dict() for line in self.lines],
                           "text_layer_rejected": self.text_layer_rejected}, ensure_ascii=False)


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


# What the schema's bounded columns hold (common/adapters/db.py sizes them with these), so every input
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
