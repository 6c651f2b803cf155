"""Rate limits per client and function: a token bucket each (adapters/token_bucket.py), open or closed without Redis."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

import flask

from common.adapters import token_bucket
from common.adapters.cache import warn_unavailable
from common.config import Settings
from common.errors import CacheUnavailable, RateLimited
from common.models import Principal
from common.web import auth


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


def _bucket(service: str, client: str) -> str:
    return f"{service}:{client}"


def _decision(settings: Settings, spent: token_bucket.Spent) -> Decision:
    return Decision(
        allowed=spent.allowed,
        limit=settings.rate_limit_capacity,
        remaining=int(spent.tokens),
        retry_after=spent.retry_after,
        reset=spent.full_in,
    )


def _without_redis(settings: Settings, error: CacheUnavailable) -> Decision:
    """Redis trouble fails open or closed as configured."""
    warn_unavailable("ratelimit", error.__cause__ or error)  # the Redis error's own words, as before
    capacity = settings.rate_limit_capacity
    if settings.rate_limit_fail_closed:
        return Decision(False, capacity, 0, 1.0, 1.0)
    return Decision(True, capacity, capacity, 0.0, 0.0, enforced=False)


def take(settings: Settings, service: str, client: str, cost: int = 1) -> Decision:
    """Spend tokens from the client's bucket for this function."""
    try:
        spent = token_bucket.take(settings, _bucket(service, client), settings.rate_limit_capacity,
                                  settings.rate_limit_refill_per_second, cost)
    except CacheUnavailable as e:
        return _without_redis(settings, e)
    return _decision(settings, spent)


async def take_async(settings: Settings, service: str, client: str, cost: int = 1) -> Decision:
    """take, on the event loop a function serves on."""
    try:
        spent = await token_bucket.take_async(settings, _bucket(service, client), settings.rate_limit_capacity,
                                              settings.rate_limit_refill_per_second, cost)
    except CacheUnavailable as e:
        return _without_redis(settings, e)
    return _decision(settings, spent)


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
