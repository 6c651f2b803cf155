"""Each API key's webhook signing secret: derived from the key's secret, kept in MySQL only sealed.

The receiver computes the secret from its API key (ocr_pipeline_client.webhooks), so nothing more is handed
out. The service knows the key's secret only at creation: it derives the signing secret then and stores it
XORed with a pad drawn from the server's internal token and the key id. Whoever reads the database gets the
key's hash and the sealed value, neither of which signs anything; signing needs the internal token too.

Keys made before the seal have none: their events are signed the old way (`v1`, from the stored hash, which
a database reader could forge), and a receiver accepts those only when it asks to (verify(legacy=True)).
"""

from __future__ import annotations

import hashlib
import hmac

# Domain separation: each derivation signs nothing else, and a future scheme can change the label.
V2_LABEL = b"ocr-pipeline webhook v2"
_V1_LABEL = b"ocr-pipeline webhook v1"
_SEAL_LABEL = b"ocr-pipeline webhook seal:"


def secret_of(key_secret: str) -> bytes:
    """The signing secret of a key, from the key's own secret (what the receiver derives from its API key)."""
    return hmac.new(key_secret.encode(), V2_LABEL, hashlib.sha256).digest()


def _pad(internal_token: str, key_id: str) -> bytes:
    return hmac.new(internal_token.encode(), _SEAL_LABEL + key_id.encode(), hashlib.sha256).digest()


def seal(internal_token: str, key_id: str, secret: bytes) -> str:
    """The signing secret as MySQL keeps it (hex): useless without the internal token."""
    return bytes(a ^ b for a, b in zip(secret, _pad(internal_token, key_id), strict=True)).hex()


def unseal(internal_token: str, key_id: str, sealed: str) -> bytes:
    return bytes(a ^ b for a, b in zip(bytes.fromhex(sealed), _pad(internal_token, key_id), strict=True))


def legacy_secret(secret_hash: str) -> bytes:
    """The v1 secret of a key made before the seal, from the SHA-256 of its secret that MySQL keeps."""
    return hmac.new(secret_hash.encode(), _V1_LABEL, hashlib.sha256).digest()
