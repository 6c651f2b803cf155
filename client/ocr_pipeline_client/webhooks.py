"""For a webhook receiver: check that an event came from the service, signed with your key's webhook secret.

The service signs `"<t>." + body` with HMAC-SHA256 and sends `X-OCR-Signature: t=<unix seconds>,v1=<hex>`.
The secret is derived from your API key (the same derivation the service makes from the key's stored hash),
so nothing else needs to be handed out or stored."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

SIGNATURE_HEADER = "X-OCR-Signature"
_LABEL = b"ocr-pipeline webhook v1"


class InvalidSignature(Exception):
    """The event is not signed by the service with this key's secret, or is too old (a replay)."""


def webhook_secret(api_key: str) -> bytes:
    """The signing secret of the key `ocr_<id>_<secret>`."""
    try:
        _prefix, _key_id, secret = api_key.split("_", 2)
    except ValueError as e:
        raise ValueError("an API key looks like ocr_<12 hex digits>_<secret>") from e
    stored_hash = hashlib.sha256(secret.encode()).hexdigest()
    return hmac.new(stored_hash.encode(), _LABEL, hashlib.sha256).digest()


def verify(api_key: str, signature_header: str | None, body: bytes, tolerance: float = 300,
           now: float | None = None) -> dict[str, Any]:
    """The event, once its signature is right and its timestamp within `tolerance` seconds; else InvalidSignature.
    Pass the raw body as received: any re-encoding breaks the signature."""
    fields = dict(part.split("=", 1) for part in (signature_header or "").split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
        given = fields["v1"]
    except (KeyError, ValueError) as e:
        raise InvalidSignature(f"no valid {SIGNATURE_HEADER} header") from e
    expected = hmac.new(webhook_secret(api_key), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    # compare_digest refuses str with non-ASCII characters (TypeError): such a signature is simply wrong.
    if not given.isascii() or not hmac.compare_digest(expected, given):
        raise InvalidSignature("the signature does not match this key's secret")
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise InvalidSignature(f"the event was signed {timestamp}, more than {tolerance:g} s from now")
    event: dict[str, Any] = json.loads(body)
    return event
