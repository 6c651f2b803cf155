"""Deciding a document's type from its bytes, never from the client's header or the file name."""

from __future__ import annotations

from typing import IO

import filetype

from common.errors import EmptyFile, UnsupportedMediaType

# What the OCR engine reads; everything else is refused with the list below in the message.
SUPPORTED_TYPES = frozenset({
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/tiff",
    "image/webp",
    "image/bmp",
    "image/gif",
})

# filetype needs at most this many leading bytes to recognise any supported type.
SNIFF_BYTES = 8192


def sniff_media_type(head: bytes) -> str | None:
    """The media type the bytes really are, or None when they are none of the supported ones."""
    kind = filetype.guess(head[:SNIFF_BYTES])
    if kind is None:
        return None
    mime = "image/bmp" if kind.mime == "image/x-ms-bmp" else kind.mime
    return mime if mime in SUPPORTED_TYPES else None


def media_type_of(data: IO[bytes], subject: str) -> str:
    """The supported type of a readable document (left at its start), or the coded error saying why not.

    `subject` names it in the message ("the file", "the object").
    """
    head = data.read(SNIFF_BYTES)
    data.seek(0)
    if not head:
        raise EmptyFile(f"{subject} is empty (0 bytes)")
    media_type = sniff_media_type(head)
    if media_type is None:
        supported = ", ".join(sorted(SUPPORTED_TYPES))
        raise UnsupportedMediaType(f"{subject} is not a supported document; supported: {supported}")
    return media_type
