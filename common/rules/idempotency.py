"""Idempotent uploads, Stripe's way: the same Idempotency-Key with the same body within 24 h gets the first answer.

Kept in Redis per API key: an entry lives exactly as long as the promise (a TTL, no sweeping), one
atomic SET NX decides which of several concurrent requests runs, and it needs no schema change. A
Redis that cannot answer refuses the upload (503) rather than risk the duplicate the client asked to
avoid. Only a 202 is remembered: a failed first request leaves nothing, so its retry runs afresh.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import IO, Any

from common.adapters import cache
from common.config import Settings
from common.errors import IdempotencyKeyInUse, IdempotencyKeyReused, InvalidIdempotencyKey
from common.logging import get_logger
from common.models import Accepted

log = get_logger()

HEADER = "Idempotency-Key"
# Stripe's own bound; visible ASCII, as it is part of a Redis key and may be logged.
MAX_KEY_CHARS = 255
_KEY = re.compile(rf"[!-~]{{1,{MAX_KEY_CHARS}}}")
REMEMBERED_SECONDS = 24 * 3600
# How long a first request may run before its key is free again (it died without settling): longer
# than any upload of MAX_UPLOAD_BYTES takes to store.
IN_PROGRESS_SECONDS = 15 * 60


def key_of(value: str | None) -> str | None:
    """The header's key, None without one; InvalidIdempotencyKey naming the limit when it cannot be kept."""
    if value is None:
        return None
    if not _KEY.fullmatch(value):
        raise InvalidIdempotencyKey(f"{HEADER} must be 1 to {MAX_KEY_CHARS} visible ASCII characters; this one has "
                                    f"{len(value)} characters")
    return value


def fingerprint(data: IO[bytes], *parameters: str) -> str:
    """SHA-256 of the document's bytes and the parameters that change the answer (name, language)."""
    digest = hashlib.sha256()
    while chunk := data.read(1024 * 1024):
        digest.update(chunk)
    data.seek(0)
    for parameter in parameters:
        digest.update(b"\0" + parameter.encode())
    return digest.hexdigest()


def once(settings: Settings, scope: str, key: str, body: str, accept: Callable[[], Accepted]) -> tuple[Accepted, bool]:
    """Run `accept` for the first request with this key; later ones get its answer. Returns (answer, replayed).

    `scope` is the caller's key id, so two clients never share (or learn of) each other's keys.
    """
    found = cache.claim_once(settings, scope, key, {"fp": body, "state": "running"}, IN_PROGRESS_SECONDS)
    if found == {}:  # expired between the two calls: the key is free again
        found = cache.claim_once(settings, scope, key, {"fp": body, "state": "running"}, IN_PROGRESS_SECONDS)
    if found:
        return _replay(found, key, body), True
    try:
        accepted = accept()
    except BaseException:
        cache.settle_once(settings, scope, key, None, 0)
        raise
    cache.settle_once(settings, scope, key, {"fp": body, "state": "done", "job_id": accepted.job_id,
                                             "document_id": accepted.document_id}, REMEMBERED_SECONDS)
    return accepted, False


def _replay(found: dict[str, Any], key: str, body: str) -> Accepted:
    if found.get("fp") != body:
        raise IdempotencyKeyReused(f"{HEADER} {key!r} was used with a different request in the last 24 hours; "
                                   "use a new key for a new document")
    if found.get("state") != "done":
        raise IdempotencyKeyInUse(f"a request with {HEADER} {key!r} is still being handled; retry in a moment",
                                  headers={"Retry-After": "1"})
    log.info("upload.replayed", job_id=found.get("job_id"))
    return Accepted(job_id=str(found["job_id"]), document_id=str(found["document_id"]), status="pending")
