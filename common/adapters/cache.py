"""Redis adapter: the clients, versioned job statuses, API key records (read ahead together), idempotency entries.

Redis trouble is logged and read as a miss, except where a miss would be wrong: clearing a deleted job's
status (bury_status) and claiming an idempotency key raise CacheUnavailable. The rate limit's token buckets
are adapters/token_bucket.py's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio
from redis.exceptions import RedisError

from common import blocking
from common.config import Settings
from common.errors import CacheUnavailable
from common.logging import get_logger

log = get_logger()

# Entries carry the job row's version. A writer leaves a bare version marker after each commit; a
# reader may only fill the entry with a version at least that new, so a slow reader that read MySQL
# before a commit can never put the older status back after it (the race a plain delete allows).
# An entry's first line is its JSON header (a bare marker is only that line), so the script decodes the
# header alone however large the cached answer after it is.
_SET_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, string.match(current, '^[^\\n]*'))
  if ok and type(decoded) == 'table' and tonumber(decoded['v']) and tonumber(decoded['v']) > tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

_clients: dict[str, redis.Redis] = {}
_warned_at: dict[str, float] = {}
# One warning per interval while Redis is away, not one per request.
WARN_INTERVAL_SECONDS = 30.0


def _options(settings: Settings) -> dict[str, Any]:
    """Short timeouts, so an unreachable Redis costs milliseconds, not seconds."""
    return {"socket_connect_timeout": settings.redis_timeout, "socket_timeout": settings.redis_timeout,
            "retry_on_timeout": False, "health_check_interval": 30}


def redis_client(settings: Settings) -> redis.Redis:
    """One pooled client per URL."""
    blocking.check("redis")
    client = _clients.get(settings.redis_url)
    if client is None:
        client = redis.Redis.from_url(settings.redis_url, **_options(settings))
        _clients[settings.redis_url] = client
    return client


# Each client with the loop its connections belong to: a client is only good on that loop.
_async_clients: dict[str, tuple[asyncio.AbstractEventLoop, redis.asyncio.Redis]] = {}


def async_redis_client(settings: Settings) -> redis.asyncio.Redis:
    """redis_client for the event loop a function serves on (common/web/loop.py)."""
    loop = asyncio.get_running_loop()
    made = _async_clients.get(settings.redis_url)
    if made is not None and made[0] is loop:
        return made[1]
    client = redis.asyncio.Redis.from_url(settings.redis_url, **_options(settings))
    _async_clients[settings.redis_url] = (loop, client)
    return client


def warn_unavailable(what: str, error: BaseException) -> None:
    now = time.monotonic()
    if now - _warned_at.get(what, -WARN_INTERVAL_SECONDS) >= WARN_INTERVAL_SECONDS:
        _warned_at[what] = now
        log.warning("redis.unavailable", operation=what, error=str(error))


def _status_key(job_id: str) -> str:
    return f"ocr:status:{job_id}"


# Values one request fetched ahead (fetch_ahead), by Redis key; None outside a `holding` block.
_ahead: ContextVar[dict[str, bytes | None] | None] = ContextVar("cache_read_ahead", default=None)


def _ahead_names(key_id: str | None, job_id: str | None) -> list[str]:
    return [name for name in (key_id and _key_key(key_id), job_id and _status_key(job_id)) if name]


def fetch_ahead(settings: Settings, key_id: str | None, job_id: str | None) -> dict[str, bytes | None]:
    """An API key's record and a job's cached status in one round trip, for `holding`.

    A status read is two lookups, the caller's key then the job, and Redis round trips are most of what a
    cache hit costs: one MGET instead of two GETs. Redis trouble here makes both reads misses, as it would
    have made each. (With AUTH=off only the status is named: fetched ahead, it is awaited on the loop.)
    """
    names = _ahead_names(key_id, job_id)
    if not names:
        return {}
    try:
        values: list[Any] = redis_client(settings).mget(names)
        return dict(zip(names, values))
    except RedisError as e:
        warn_unavailable("read_ahead", e)
        return dict.fromkeys(names)


async def fetch_ahead_async(settings: Settings, key_id: str | None, job_id: str | None) -> dict[str, bytes | None]:
    """fetch_ahead on the event loop: other requests go on while Redis answers."""
    names = _ahead_names(key_id, job_id)
    if not names:
        return {}
    try:
        values: list[Any] = await async_redis_client(settings).mget(names)
        return dict(zip(names, values))
    except RedisError as e:
        warn_unavailable("read_ahead", e)
        return dict.fromkeys(names)


@contextmanager
def holding(fetched: dict[str, bytes | None]) -> Iterator[None]:
    """Reads in the block take the values fetched ahead, each once: a read after a write in the same request
    goes to Redis."""
    token = _ahead.set(dict(fetched))
    try:
        yield
    finally:
        _ahead.reset(token)


def ahead_values() -> dict[str, bytes | None]:
    """What is left of the values fetched ahead in this block (a copy), to hand to another thread."""
    return dict(_ahead.get() or {})


def _get(settings: Settings, key: str) -> Any:
    """GET, or the value this request already fetched ahead (taken once)."""
    ahead = _ahead.get()
    if ahead is not None and key in ahead:
        return ahead.pop(key)
    return redis_client(settings).get(key)


def _read_object(settings: Settings, key: str, what: str) -> dict[str, Any] | None:
    """A JSON object stored under key; None on a miss, anything unreadable, or Redis trouble."""
    try:
        raw = _get(settings, key)
    except RedisError as e:
        warn_unavailable(what, e)
        return None
    try:
        value = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class CachedStatus:
    """A status answer as cached: its JSON bytes, served as they are, and the few fields a read must check.

    Stored as one header line of JSON (version, owner, state, output keys), a newline, then `body`: a
    hit decodes only the short header, never the text, however long the document.
    """

    body: bytes  # a JSON object
    owner_id: str | None
    status: str
    # result name -> object key (links are signed per read), and `pdfa` -> how a PDF/A request went
    outputs: dict[str, Any] | None


def _encode_status(version: int, entry: CachedStatus) -> bytes:
    header = {"v": version, "owner": entry.owner_id, "status": entry.status, "outputs": entry.outputs}
    # json.dumps escapes every newline inside strings, so the first raw newline ends the header.
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + entry.body


def _decode_status(raw: bytes) -> CachedStatus | None:
    head, newline, body = raw.partition(b"\n")
    if not newline or not body:
        return None  # a bare version marker (or an entry of the older one-object format): a miss
    try:
        header = json.loads(head)
    except ValueError:
        return None
    if not isinstance(header, dict) or not isinstance(header.get("status"), str):
        return None
    outputs = header.get("outputs")
    return CachedStatus(body=body, owner_id=header.get("owner"), status=header["status"],
                        outputs=outputs if isinstance(outputs, dict) else None)


def read_status(settings: Settings, job_id: str) -> CachedStatus | None:
    """The cached status, or None on a miss, a bare marker, anything unreadable, or Redis trouble."""
    try:
        raw = _get(settings, _status_key(job_id))
    except RedisError as e:
        warn_unavailable("status.read", e)
        return None
    return _decode_status(raw) if isinstance(raw, bytes) else None


def _set_if_newer(settings: Settings, job_id: str, version: int, value: bytes, ttl: float) -> None:
    try:
        redis_client(settings).eval(_SET_IF_NEWER, 1, _status_key(job_id), version, value, int(ttl * 1000))
    except RedisError as e:
        warn_unavailable("status.write", e)


def fill_status(settings: Settings, job_id: str, version: int, entry: CachedStatus, final: bool) -> None:
    """Populate after a miss, unless a newer commit already left its marker."""
    ttl = settings.status_ttl_final if final else settings.status_ttl_active
    _set_if_newer(settings, job_id, version, _encode_status(version, entry), ttl)


# Newer than any version a job row can reach: a fill for a buried job never lands.
_TOMBSTONE_VERSION = 2**53


def bury_status(settings: Settings, job_ids: list[str]) -> None:
    """Before a job's rows are deleted: no cached status survives, and no slow reader can put one back.

    Unlike every other cache write this one must succeed (CacheUnavailable otherwise): a cached status
    would otherwise keep serving a deleted document's text until its TTL ran out.
    """
    if not settings.status_cache or not job_ids:
        return
    marker = json.dumps({"v": _TOMBSTONE_VERSION})
    ttl = int(max(settings.status_ttl_final, settings.status_ttl_active) * 1000)
    try:
        with redis_client(settings).pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.set(_status_key(job_id), marker, px=ttl)
            pipe.execute()
    except RedisError as e:
        raise CacheUnavailable("the status cache could not be cleared; try again later", detail=str(e)) from e


def mark_changed(settings: Settings, job_id: str, version: int) -> None:
    """Called after every committed status change: the next read goes to MySQL and refills."""
    _set_if_newer(settings, job_id, version, json.dumps({"v": version}).encode(), settings.status_ttl_active)


# --- API key records ------------------------------------------------------------------------------


def _key_key(key_id: str) -> str:
    return f"ocr:apikey:{key_id}"


def read_key(settings: Settings, key_id: str) -> dict[str, Any] | None:
    """A key's cached record (hash, role, revoked), or None on a miss or Redis trouble."""
    return _read_object(settings, _key_key(key_id), "apikey.read")


def fill_key(settings: Settings, key_id: str, record: dict[str, Any], ttl: float) -> None:
    try:
        redis_client(settings).set(_key_key(key_id), json.dumps(record), px=int(ttl * 1000))
    except RedisError as e:
        warn_unavailable("apikey.write", e)


def forget_key(settings: Settings, key_id: str) -> None:
    """After a revocation: the next request reads MySQL. If Redis is away, the entry's TTL bounds the delay."""
    try:
        redis_client(settings).delete(_key_key(key_id))
    except RedisError as e:
        warn_unavailable("apikey.forget", e)


# --- idempotent uploads ----------------------------------------------------------------------------


def _idempotency_key(scope: str, key: str) -> str:
    return f"ocr:idempotency:{scope}:{key}"


def claim_once(settings: Settings, scope: str, key: str, entry: dict[str, Any], ttl: float) -> dict[str, Any] | None:
    """Record `entry` under (scope, key) unless one is there (SET NX); returns the one found, None if ours landed.

    Unlike the status cache this must be answered: CacheUnavailable when Redis cannot say, since a
    client sending the key asked for the guarantee that no duplicate is made.
    """
    name = _idempotency_key(scope, key)
    try:
        client = redis_client(settings)
        if client.set(name, json.dumps(entry), px=int(ttl * 1000), nx=True):
            return None
        raw = client.get(name)
    except RedisError as e:
        raise CacheUnavailable("idempotency keys cannot be checked right now; try again later",
                               detail=str(e)) from e
    try:
        found = json.loads(raw) if raw is not None else None
    except ValueError:
        found = None
    # Gone between SET and GET (it expired): the caller tries again.
    return found if isinstance(found, dict) else {}


def settle_once(settings: Settings, scope: str, key: str, entry: dict[str, Any] | None, ttl: float) -> None:
    """Replace the in-progress entry with the answer (`entry`), or drop it (None) so a retry runs afresh."""
    name = _idempotency_key(scope, key)
    try:
        if entry is None:
            redis_client(settings).delete(name)
        else:
            redis_client(settings).set(name, json.dumps(entry), px=int(ttl * 1000))
    except RedisError as e:
        # The in-progress entry then expires on its own; until then a retry is told to wait (409).
        warn_unavailable("idempotency.settle", e)
