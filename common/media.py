"""Deciding a document's type from its bytes, never from the client's header or the file name."""

from __future__ import annotations

import filetype

# What the OCR engine reads; everything else is refused with the list below in the message.
SUPPORTED_TYPES = {
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/tiff": "tif",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/gif": "gif",
}

# filetype needs at most this many leading bytes to recognise any supported type.
SNIFF_BYTES = 8192


def sniff_media_type(head: bytes) -> str | None:
    """The media type the bytes really are, or None when they are none of the supported ones."""
    kind = filetype.guess(head[:SNIFF_BYTES])
    if kind is None:
        return None
    mime = "image/bmp" if kind.mime == "image/x-ms-bmp" else kind.mime
    return mime if mime in SUPPORTED_TYPES else None


def supported_list() -> str:
    return ", ".join(sorted(SUPPORTED_TYPES))


def extension_for(media_type: str) -> str:
    return SUPPORTED_TYPES.get(media_type, "bin")
