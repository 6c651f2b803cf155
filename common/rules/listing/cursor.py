"""The listing's cursor: an opaque, checksummed keyset bound to the sort and filters that issued it."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from common.errors import BadRequest

MAX_CURSOR_CHARS = 512
CURSOR_VERSION = 1


@dataclass(frozen=True)
class Position:
    """Where a page ended: the keyset the next page starts after."""

    created_at: datetime  # naive UTC with microseconds, as stored
    document_id: str


class Listing(Protocol):
    """What a cursor is bound to; a protocol so the codec does not depend on the parameter parser."""

    @property
    def sort(self) -> str: ...

    @property
    def filter_key(self) -> str: ...


def _checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def encode_cursor(query: Listing, position: Position) -> str:
    """Opaque to clients: base64url of JSON with the keyset, the filter digest and a checksum."""
    body: dict[str, Any] = {
        "v": CURSOR_VERSION,
        "s": query.sort,
        "f": query.filter_key,
        "t": position.created_at.isoformat(timespec="microseconds"),
        "i": position.document_id,
    }
    body["c"] = _checksum(body)
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).rstrip(b"=").decode()


def decode_cursor(raw: str, query: Listing) -> Position:
    """The keyset inside a cursor issued for exactly this sort and these filters."""
    invalid = BadRequest("cursor is not a cursor this listing issued (damaged or edited); "
                         "start again without cursor")
    if len(raw) > MAX_CURSOR_CHARS:
        raise invalid
    try:
        body = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as e:
        raise invalid from e
    if not isinstance(body, dict) or set(body) != {"v", "s", "f", "t", "i", "c"}:
        raise invalid
    checksum = body.pop("c")
    if checksum != _checksum(body) or body["v"] != CURSOR_VERSION:
        raise invalid
    if body["s"] != query.sort or body["f"] != query.filter_key:
        raise BadRequest("cursor belongs to a listing with other filters or sort; send the same filter and "
                         "sort parameters as the page it came from, or start again without cursor")
    try:
        created_at = datetime.fromisoformat(body["t"])
    except (TypeError, ValueError) as e:
        raise invalid from e
    if created_at.tzinfo is not None or not isinstance(body["i"], str) or not 0 < len(body["i"]) <= 36:
        raise invalid
    return Position(created_at=created_at, document_id=body["i"])
