"""Token-bucket rate limits per client, atomic in one Redis Lua script on Redis's own clock."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Any

import flask
from redis.exceptions import RedisError

from common.adapters.cache import async_redis_client, redis_client, warn_unavailable
from common.config import Settings
from common.errors import RateLimited
from common.models import Principal
from common.web import auth

# One script call reads, refills and spends, so replicas never race on a read-modify-write.
# Redis TIME, not the callers' clocks: replicas on different hosts agree on "now".
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity / rate) * 1000) + 1000)
local retry_after = 0
if allowed == 0 then
  retry_after = (cost - tokens) / rate
end
return {allowed, tostring(tokens), tostring(retry_after), tostring((capacity - tokens) / rate)}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: float
    reset: float
    enforced: bool = True

    def headers(self) -> dict[str, str]:
        if not self.enforced:
            return {}
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


def _bucket(settings: Settings, service: str, client: str, cost: int) -> tuple[str, int, str, int, float, int]:
    """The script's arguments: its one key, then capacity, refill rate and cost."""
    return _TAKE, 1, f"ocr:ratelimit:{service}:{client}", settings.rate_limit_capacity, \
        settings.rate_limit_refill_per_second, cost


def _decision(settings: Settings, reply: list[Any]) -> Decision:
    allowed, tokens, retry_after, reset = reply
    return Decision(
        allowed=bool(int(allowed)),
        limit=settings.rate_limit_capacity,
        remaining=int(float(tokens)),
        retry_after=float(retry_after),
        reset=float(reset),
    )


def _without_redis(settings: Settings, error: RedisError) -> Decision:
    """Redis trouble fails open or closed as configured."""
    warn_unavailable("ratelimit", error)
    capacity = settings.rate_limit_capacity
    if settings.rate_limit_fail_closed:
        return Decision(False, capacity, 0, 1.0, 1.0)
    return Decision(True, capacity, capacity, 0.0, 0.0, enforced=False)


def take(settings: Settings, service: str, client: str, cost: int = 1) -> Decision:
    """Spend tokens from the client's bucket for this function."""
    try:
        return _decision(settings, redis_client(settings).eval(*_bucket(settings, service, client, cost)))
    except RedisError as e:
        return _without_redis(settings, e)


async def take_async(settings: Settings, service: str, client: str, cost: int = 1) -> Decision:
    """take, on the event loop a function serves on."""
    try:
        reply = await async_redis_client(settings).eval(*_bucket(settings, service, client, cost))
    except RedisError as e:
        return _without_redis(settings, e)
    return _decision(settings, reply)


def _trusted(address: str, proxies: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(p, strict=False) for p in proxies)


def client_key(request: flask.Request, settings: Settings, principal: Principal | None = None) -> str:
    """The authenticated key when there is one, else the client's address.

    X-Forwarded-For counts only when the peer is a trusted proxy (the gateway) that proves it wrote it (a local
    user can connect from the same address), and then only its right-most untrusted entry: everything left of
    that was written by the client and can be forged.
    """
    if principal is not None and principal.key_id:
        return "key:" + principal.key_id
    address = request.remote_addr or "unknown"
    if _trusted(address, settings.trusted_proxies) and auth.forwarded_for_vouched(request.headers, settings):
        for hop in reversed([h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]):
            address = hop
            if not _trusted(hop, settings.trusted_proxies):
                break
    return "ip:" + address


def enforce(request: flask.Request, settings: Settings, service: str, principal: Principal | None) -> Decision | None:
    """Raise RateLimited over the limit; None when limits are off for this function (capacity 0)."""
    if settings.rate_limit_capacity <= 0:
        return None
    return _allowed(settings, take(settings, service, client_key(request, settings, principal)))


async def enforce_async(request: flask.Request, settings: Settings, service: str,
                        principal: Principal | None) -> Decision | None:
    """enforce, on the event loop a function serves on."""
    if settings.rate_limit_capacity <= 0:
        return None
    return _allowed(settings, await take_async(settings, service, client_key(request, settings, principal)))


def _allowed(settings: Settings, decision: Decision) -> Decision:
    if not decision.allowed:
        raise RateLimited(
            f"rate limit of {decision.limit} requests per bucket refilled at "
            f"{settings.rate_limit_refill_per_second:g}/s exceeded; retry in {max(1, math.ceil(decision.retry_after))} s",
            headers=decision.headers(),
        )
    return decision
