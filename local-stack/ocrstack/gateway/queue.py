"""The durable async queue: a Redis stream with a consumer group, delayed retries and a dead-letter stream."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from common.logging import get_logger

log = get_logger()

STREAM = "faas:queue"
GROUP = "faas-gateway"
DELAYED = "faas:queue:delayed"
DEAD = "faas:queue:dead"
# 4xx answers that mean "not now" rather than "never": timeout, conflict (job held elsewhere), too early, rate limited.
RETRYABLE_4XX = frozenset({408, 409, 425, 429})

# Due retries go back onto the stream in one atomic step, so none is lost or doubled between the two.
_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'payload', member)
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""


@dataclass
class Invocation:
    """One queued call of a function, as stored in the stream (the body base64-encoded, as bytes may be binary)."""

    function: str
    path: str
    query: str
    method: str
    headers: dict[str, str]
    body: bytes
    call_id: str
    callback_url: str | None
    attempt: int = 0
    enqueued_at: float = 0.0
    last_status: int | None = None
    last_error: str | None = None

    def dumps(self) -> str:
        data = {k: v for k, v in self.__dict__.items() if k != "body"}
        data["body_b64"] = base64.b64encode(self.body).decode()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def loads(cls, raw: bytes | str) -> "Invocation":
        data = json.loads(raw)
        body = base64.b64decode(data.pop("body_b64", ""))
        return cls(body=body, **data)


@dataclass(frozen=True)
class Result:
    """What one call of a function gave the queue: its status, body and headers, or why it could not be made."""

    status: int  # 0 when the function could not be reached
    body: bytes
    headers: dict[str, str]
    error: str | None = None


Invoker = Callable[[Invocation], Awaitable[Result]]
Callback = Callable[[Invocation, Result], Awaitable[None]]


class AsyncQueue:
    """Accepts invocations durably and runs them with bounded, backed-off retries; consumers are `gateway-<i>`."""

    def __init__(self, redis_url: str, max_attempts: int = 8, backoff_base: float = 1.0, backoff_cap: float = 30.0,
                 reclaim_idle: float = 30.0) -> None:
        # Typed loosely: redis-py's stream replies are unions over RESP2/RESP3 shapes; we use RESP2.
        self.redis: Any = aioredis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=10)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        # A worker touches the entry it runs every third of this (_kept_claimed), however long the call
        # takes; an entry idle this long was left by a worker that died or lost its acknowledgement.
        self.reclaim_idle_ms = int(reclaim_idle * 1000)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def ensure_group(self) -> None:
        try:
            # From id 0: entries added before the group existed are delivered too.
            await self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def enqueue(self, invocation: Invocation) -> str:
        invocation.enqueued_at = invocation.enqueued_at or time.time()
        entry_id = await self.redis.xadd(STREAM, {"payload": invocation.dumps()})
        log.info("queue.enqueued", function=invocation.function, call_id=invocation.call_id,
                 entry=entry_id.decode() if isinstance(entry_id, bytes) else entry_id)
        return str(entry_id)

    def start(self, workers: int, invoke: Invoker, callback: Callback) -> None:
        for i in range(workers):
            self._tasks.append(asyncio.create_task(self._consume(f"gateway-{i}", invoke, callback)))
        self._tasks.append(asyncio.create_task(self._promote_due()))

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.redis.aclose()

    async def _consume(self, consumer: str, invoke: Invoker, callback: Callback) -> None:
        # Own pending entries first: what this consumer had taken but not finished before a restart.
        backlog = True
        last_reclaim = 0.0
        while not self._stopping:
            try:
                if backlog:
                    reply = await self.redis.xreadgroup(GROUP, consumer, {STREAM: "0"}, count=1)
                    entries = reply[0][1] if reply else []
                    if not entries:
                        backlog = False
                        continue
                else:
                    if time.monotonic() - last_reclaim > 10:
                        last_reclaim = time.monotonic()
                        _next, claimed, *_ = await self.redis.xautoclaim(
                            STREAM, GROUP, consumer, min_idle_time=self.reclaim_idle_ms, count=10)
                        if claimed:
                            log.warning("queue.reclaimed", consumer=consumer, entries=len(claimed))
                            backlog = True
                            continue
                    reply = await self.redis.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=1, block=1000)
                    entries = reply[0][1] if reply else []
                for entry_id, fields in entries:
                    await self._handle(consumer, entry_id, fields, invoke, callback)
            except asyncio.CancelledError:
                raise
            except RedisError as e:
                log.warning("queue.redis_error", consumer=consumer, error=str(e))
                await asyncio.sleep(1.0)

    @contextlib.asynccontextmanager
    async def _kept_claimed(self, consumer: str, entry_id: bytes) -> AsyncIterator[None]:
        """Reset the entry's idle time while its call runs, so only an abandoned entry is ever reclaimed.

        The reclaim bound is then short and the same for every function (a long OCR call is touched, not
        reclaimed), instead of the longest exec_timeout: an acknowledgement lost to a Redis restart is
        redelivered after reclaim_idle, not after a quarter of an hour.
        """

        async def touch() -> None:
            while True:
                await asyncio.sleep(self.reclaim_idle_ms / 3000)
                try:
                    await self.redis.xclaim(STREAM, GROUP, consumer, min_idle_time=0, message_ids=[entry_id],
                                            justid=True)
                except RedisError as e:
                    log.warning("queue.touch_failed", error=str(e))

        task = asyncio.create_task(touch())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _handle(self, consumer: str, entry_id: bytes, fields: dict[bytes, bytes] | None, invoke: Invoker,
                      callback: Callback) -> None:
        raw = fields.get(b"payload") if fields else None
        if raw is None:  # a deleted entry still listed in the pending list
            await self.redis.xack(STREAM, GROUP, entry_id)
            return
        invocation = Invocation.loads(raw)
        try:
            async with self._kept_claimed(consumer, entry_id):
                result = await invoke(invocation)
        except (asyncio.CancelledError, RedisError):
            raise
        except Exception as e:
            # A bug or a malformed entry must cost attempts and end in the dead letters, not kill this
            # consumer or come back forever from its pending list.
            log.exception("queue.invoke_failed", function=invocation.function, call_id=invocation.call_id)
            result = Result(0, b"", {}, f"gateway error: {e!r}")
        if 200 <= result.status < 300:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xack(STREAM, GROUP, entry_id)
                pipe.xdel(STREAM, entry_id)
                await pipe.execute()
            log.info("queue.done", function=invocation.function, call_id=invocation.call_id,
                     attempt=invocation.attempt, status=result.status)
            if invocation.callback_url:
                await callback(invocation, result)
            return
        retry_after = _retry_after(result)
        # 409 + Retry-After: "someone else is doing this, ask again then". Not a failure of this
        # invocation, so it spends no attempt (ocr-process says so while another worker holds the job).
        deferred = result.status == 409 and retry_after is not None
        if not deferred:
            invocation.attempt += 1
        invocation.last_status = result.status
        invocation.last_error = result.error or result.body[:500].decode(errors="replace")
        # The function refused the request itself (malformed, unauthorised, not found): asking again
        # cannot change the answer, so it goes to the dead letters at once, with its reason.
        permanent = 400 <= result.status < 500 and result.status not in RETRYABLE_4XX
        async with self.redis.pipeline(transaction=True) as pipe:
            if not permanent and (deferred or invocation.attempt < self.max_attempts):
                if retry_after is not None:
                    delay = retry_after
                else:
                    delay = min(self.backoff_cap, self.backoff_base * 2 ** (invocation.attempt - 1))
                    delay *= random.uniform(0.8, 1.2)
                pipe.zadd(DELAYED, {invocation.dumps(): time.time() + delay})
                log.warning("queue.retry_scheduled", function=invocation.function, call_id=invocation.call_id,
                            attempt=invocation.attempt, status=result.status, delay_s=round(delay, 2),
                            error=invocation.last_error)
            else:
                pipe.xadd(DEAD, {"payload": invocation.dumps(), "failed_at": str(time.time())})
                log.error("queue.dead_lettered", function=invocation.function, call_id=invocation.call_id,
                          attempts=invocation.attempt, status=result.status, error=invocation.last_error)
                if invocation.callback_url:
                    await callback(invocation, result)
            pipe.xack(STREAM, GROUP, entry_id)
            pipe.xdel(STREAM, entry_id)
            await pipe.execute()

    async def _promote_due(self) -> None:
        while not self._stopping:
            try:
                await self.redis.eval(_PROMOTE, 2, DELAYED, STREAM, time.time())
            except RedisError as e:
                log.warning("queue.redis_error", task="promote", error=str(e))
            await asyncio.sleep(0.2)

    # --- operator view -------------------------------------------------------------------------
    async def stats(self) -> dict[str, Any]:
        pending = await self.redis.xpending(STREAM, GROUP)
        return {
            "queued": await self.redis.xlen(STREAM),
            "pending": int(pending["pending"]) if pending else 0,
            "delayed": await self.redis.zcard(DELAYED),
            "dead": await self.redis.xlen(DEAD),
        }

    async def dead_letters(self, count: int = 100) -> list[dict[str, Any]]:
        out = []
        for entry_id, fields in await self.redis.xrange(DEAD, count=count):
            inv = Invocation.loads(fields[b"payload"])
            out.append({
                "id": entry_id.decode(), "function": inv.function, "call_id": inv.call_id,
                "attempts": inv.attempt, "last_status": inv.last_status, "last_error": inv.last_error,
                "failed_at": float(fields.get(b"failed_at", b"0")),
            })
        return out

    async def replay(self, dead_id: str) -> bool:
        """Put a dead letter back on the queue with its attempts reset; False when there is no such entry."""
        entries = await self.redis.xrange(DEAD, min=dead_id, max=dead_id)
        if not entries:
            return False
        inv = Invocation.loads(entries[0][1][b"payload"])
        inv.attempt, inv.last_status, inv.last_error = 0, None, None
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(STREAM, {"payload": inv.dumps()})
            pipe.xdel(DEAD, dead_id)
            await pipe.execute()
        log.info("queue.replayed", function=inv.function, call_id=inv.call_id, dead_id=dead_id)
        return True


def _retry_after(result: Result) -> float | None:
    """A function's Retry-After (seconds form) on 409, 429 or 503; capped so a typo cannot park a call for days."""
    if result.status not in (409, 429, 503):
        return None
    raw = next((v for k, v in result.headers.items() if k.lower() == "retry-after"), None)
    try:
        return min(300.0, max(0.0, float(raw))) if raw is not None else None
    except ValueError:
        return None


def new_call_id() -> str:
    """An id for a call that came without X-Call-Id, as OpenFaaS makes one."""
    return str(uuid.uuid4())
