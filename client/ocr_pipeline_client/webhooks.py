"""For a webhook receiver: check that an event came from the service, signed with your key's webhook secret.

The service signs `"<t>." + body` with HMAC-SHA256 and sends `X-OCR-Signature: t=<unix seconds>,v2=<hex>`.
The secret is derived from your API key's secret, which the service keeps only sealed: nothing else needs to be
handed out or stored, and a reader of the service's database cannot sign an event. Keys made before that
(service releases without the seal) sign with `v1=`, from the key's stored hash; pass legacy=True to accept
those, knowing a database reader could forge them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

SIGNATURE_HEADER = "X-OCR-Signature"
_LABEL = b"ocr-pipeline webhook v2"
_LEGACY_LABEL = b"ocr-pipeline webhook v1"


class InvalidSignature(Exception):
    """The event is not signed by the service with this key's secret, or is too old (a replay)."""


def _secret_part(api_key: str) -> str:
    try:
        _prefix, _key_id, secret = api_key.split("_", 2)
    except ValueError as e:
        raise ValueError("an API key looks like ocr_<12 hex digits>_<secret>") from e
    return secret


def webhook_secret(api_key: str) -> bytes:
    """The signing secret (v2) of the key `ocr_<id>_<secret>`."""
    return hmac.new(_secret_part(api_key).encode(), _LABEL, hashlib.sha256).digest()


def legacy_webhook_secret(api_key: str) -> bytes:
    """The v1 signing secret of a key made before the service sealed secrets (from the key's hash)."""
    stored_hash = hashlib.sha256(_secret_part(api_key).encode()).hexdigest()
    return hmac.new(stored_hash.encode(), _LEGACY_LABEL, hashlib.sha256).digest()


def verify(api_key: str, signature_header: str | None, body: bytes, tolerance: float = 300,
           now: float | None = None, legacy: bool = False) -> dict[str, Any]:
    """The event, once its signature is right and its timestamp within `tolerance` seconds; else InvalidSignature.
    Pass the raw body as received: any re-encoding breaks the signature. A v1 signature (a key older than the
    service's sealed secrets) counts only with legacy=True."""
    fields = dict(part.split("=", 1) for part in (signature_header or "").split(",") if "=" in part)
    scheme = "v2" if "v2" in fields else "v1"
    try:
        timestamp = int(fields["t"])
        given = fields[scheme]
    except (KeyError, ValueError) as e:
        raise InvalidSignature(f"no valid {SIGNATURE_HEADER} header") from e
    if scheme == "v1" and not legacy:
        raise InvalidSignature("a v1 signature (a key older than sealed webhook secrets) needs verify(legacy=True)")
    secret = webhook_secret(api_key) if scheme == "v2" else legacy_webhook_secret(api_key)
    expected = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    # compare_digest refuses str with non-ASCII characters (TypeError): such a signature is simply wrong.
    if not given.isascii() or not hmac.compare_digest(expected, given):
        raise InvalidSignature("the signature does not match this key's secret")
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise InvalidSignature(f"the event was signed {timestamp}, more than {tolerance:g} s from now")
    event: dict[str, Any] = json.loads(body)
    return event
