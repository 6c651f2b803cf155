"""Redis adapter for token buckets: one Lua script spends a bucket's tokens atomically, on Redis's own clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from common.adapters.cache import async_redis_client, redis_client
from common.config import Settings
from common.errors import CacheUnavailable

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
class Spent:
    """What the bucket said: whether the tokens were spent, what is left, and the seconds until it could be."""

    allowed: bool
    tokens: float
    retry_after: float
    full_in: float  # seconds until the bucket is full again


def _call(name: str, capacity: int, rate: float, cost: int) -> tuple[str, int, str, int, float, int]:
    """The script's arguments: its one key, then capacity, refill rate and cost."""
    return _TAKE, 1, f"ocr:ratelimit:{name}", capacity, rate, cost


def _spent(reply: list[Any]) -> Spent:
    allowed, tokens, retry_after, full_in = reply
    return Spent(bool(int(allowed)), float(tokens), float(retry_after), float(full_in))


def take(settings: Settings, name: str, capacity: int, rate: float, cost: int = 1) -> Spent:
    """Spend `cost` tokens of the bucket `name` (created full); CacheUnavailable when Redis cannot answer."""
    try:
        return _spent(redis_client(settings).eval(*_call(name, capacity, rate, cost)))
    except RedisError as e:
        raise CacheUnavailable("the rate limit store is unavailable", detail=str(e)) from e


async def take_async(settings: Settings, name: str, capacity: int, rate: float, cost: int = 1) -> Spent:
    """take, on the event loop a function serves on."""
    try:
        reply = await async_redis_client(settings).eval(*_call(name, capacity, rate, cost))
    except RedisError as e:
        raise CacheUnavailable("the rate limit store is unavailable", detail=str(e)) from e
    return _spent(reply)
