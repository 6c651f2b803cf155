"""Records shared across layers: job states, page results and words, who is calling. No service, no engine."""

from __future__ import annotations

import enum
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
    confidence: float
    left: int
    top: int
    width: int
    height: int

    def to_dict(self) -> dict[str, str | float | int]:
        return {"text": self.text, "confidence": self.confidence, "left": self.left, "top": self.top,
                "width": self.width, "height": self.height}


@dataclass(frozen=True)
class PageResult:
    number: int
    text: str
    confidence: float | None
    method: str  # "ocr" or "text_layer"
    width: int | None  # pixels of the OCRed raster; None for text taken from the PDF's layer
    height: int | None
    duration_ms: int
    rotation: int = 0  # degrees the page was turned clockwise before OCR
    words: list[Word] = field(default_factory=list)  # OCRed words with their boxes in the raster's pixels


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
