"""API keys: creation, listing, revocation and verification; MySQL keeps only a hash, Redis a short-lived copy."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from common import blocking
from common.adapters import cache
from common.adapters.db import ApiKey, session_scope, utcnow
from common.config import Settings
from common.errors import BadRequest, InvalidApiKey
from common.logging import get_logger
from common.models import Principal, Role
from common.rules import webhook_keys

# `ocr_` + key id + `_` + secret. The prefix makes a leaked key easy to recognise (secret scanners,
# log greps); the id is public (it names the owner in listings and inbox folders), the secret is not.
TOKEN_PREFIX = "ocr_"
KEY_ID = re.compile(r"[0-9a-f]{12}")
_TOKEN = re.compile(r"ocr_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
MAX_NAME_CHARS = 100

log = get_logger()


@dataclass(frozen=True)
class KeyInfo:
    id: str
    name: str
    role: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat(timespec="seconds") + "Z"

        return {"id": self.id, "name": self.name, "role": self.role, "created_at": iso(self.created_at),
                "last_used_at": iso(self.last_used_at), "revoked_at": iso(self.revoked_at)}


@dataclass(frozen=True)
class CreatedKey:
    info: KeyInfo
    token: str  # the only time the secret exists outside the client's hands


def looks_like_token(value: str) -> bool:
    return _TOKEN.fullmatch(value) is not None


def key_id_of(token: str) -> str | None:
    """The key id a well-formed token names (public, unverified); None for anything else."""
    match = _TOKEN.fullmatch(token)
    return match.group(1) if match else None


def _hash(secret: str) -> str:
    # The secret is 256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(id=row.id, name=row.name, role=row.role, created_at=row.created_at,
                   last_used_at=row.last_used_at, revoked_at=row.revoked_at)


def create(settings: Settings, name: str, role: Role = Role.USER) -> CreatedKey:
    """A new key; the returned token is the only copy of its secret."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise BadRequest(f"a key needs a name of 1 to {MAX_NAME_CHARS} characters")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    # Sealed with the internal token (a key made where none is set signs its webhooks the old way, v1).
    sealed = webhook_keys.seal(settings.internal_token, key_id, webhook_keys.secret_of(secret)) \
        if settings.internal_token else None
    if sealed is None:
        log.warning("apikeys.webhook_secret_unsealed", key_id=key_id,
                    reason="INTERNAL_TOKEN is not set: this key's webhooks are signed from its stored hash (v1)")
    row = ApiKey(id=key_id, name=name, role=role.value, secret_hash=_hash(secret), created_at=utcnow(),
                 webhook_seal=sealed)
    with session_scope(settings) as session:
        session.add(row)
    # A lookup of this id before it existed may have left a "no such key" entry behind.
    cache.forget_key(settings, key_id)
    return CreatedKey(info=_info(row), token=f"{TOKEN_PREFIX}{key_id}_{secret}")


def list_keys(settings: Settings) -> list[KeyInfo]:
    with session_scope(settings) as session:
        return [_info(row) for row in session.execute(select(ApiKey).order_by(ApiKey.created_at)).scalars()]


def revoke(settings: Settings, key_id: str) -> bool:
    """Revoke a key; False if there is no such live key. Takes effect at once while Redis answers,
    and within AUTH_CACHE_SECONDS in any case."""
    with session_scope(settings) as session:
        result = session.execute(
            update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow())
        )
        revoked = bool(result.rowcount)  # type: ignore[attr-defined]
    cache.forget_key(settings, key_id)
    return revoked


# Striped, so that any number of key ids (random ones included) share a fixed set of locks.
_REFILLS = [threading.Lock() for _ in range(64)]


def _record(settings: Settings, key_id: str) -> dict[str, Any]:
    """What verification needs of a key, from Redis or else MySQL (which then notes the use).

    When a key's cached record expires, every request of that key in flight misses at once; one per process
    reads MySQL and refills, the others wait for it and read the refilled record (on the status function's
    loop, 16 connections of one key held up to 285 ms behind each other's MySQL writes).
    """
    record = cache.read_key(settings, key_id)
    if record is not None:
        return record
    blocking.check("a key's refill")  # waiting for the lock is waiting too: never on an event loop
    with _REFILLS[hash(key_id) % len(_REFILLS)]:
        return cache.read_key(settings, key_id) or _record_from_mysql(settings, key_id)


def _record_from_mysql(settings: Settings, key_id: str) -> dict[str, Any]:
    record: dict[str, Any]
    with session_scope(settings) as session:
        row = session.get(ApiKey, key_id)
        if row is None:
            record = {"missing": True}
        else:
            record = {"hash": row.secret_hash, "role": row.role, "revoked": row.revoked_at is not None}
            row.last_used_at = utcnow()
    cache.fill_key(settings, key_id, record, settings.auth_cache_seconds)
    return record


def verify(settings: Settings, token: str) -> Principal:
    """The principal a presented token stands for; InvalidApiKey for anything else."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise InvalidApiKey("the API key is malformed: keys look like ocr_<12 hex digits>_<43 characters>")
    key_id, secret = match.groups()
    record = _record(settings, key_id)
    if record.get("missing") or not hmac.compare_digest(_hash(secret), str(record.get("hash", ""))):
        raise InvalidApiKey("the API key is not valid")
    if record.get("revoked"):
        raise InvalidApiKey("the API key has been revoked")
    return Principal(key_id=key_id, role=Role(record["role"]))


def principal_of(settings: Settings, key_id: str) -> Principal:
    """The principal of a key id verified earlier (a queued call's), checked again: InvalidApiKey if gone."""
    if not KEY_ID.fullmatch(key_id):
        raise InvalidApiKey("the API key is not valid")
    record = _record(settings, key_id)
    if record.get("missing"):
        raise InvalidApiKey("the API key is not valid")
    if record.get("revoked"):
        raise InvalidApiKey("the API key has been revoked")
    return Principal(key_id=key_id, role=Role(record["role"]))


def is_live(settings: Settings, key_id: str) -> bool:
    """Whether a key id names a key that exists and is not revoked (for inbox/<key id>/ drops)."""
    if not KEY_ID.fullmatch(key_id):
        return False
    record = _record(settings, key_id)
    return not record.get("missing") and not record.get("revoked")
