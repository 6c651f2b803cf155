"""The durable async queue: a Redis stream with a consumer group, delayed retries and a dead-letter stream.

What it may hold is bounded: dead letters by count (DEAD_MAX) and age (DEAD_MAX_AGE_SECONDS), keeping a body
only up to DEAD_BODY_MAX bytes; calls of no verified caller by their total bytes (admit_open). Stored calls
carry no credential (access.py).
"""

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
from ocrstack.gateway.retry import Action, RetryPolicy, decide

log = get_logger()

STREAM = "faas:queue"
GROUP = "faas-gateway"
DELAYED = "faas:queue:delayed"
DEAD = "faas:queue:dead"
# The header that names an invocation's lane (see AsyncQueue); a name the gateway was not started with
# is the default lane.
LANE_HEADER = "X-Queue-Lane"
# Dead letters: enough for an operator to see what failed and replay it, not a store anyone can fill. A MinIO
# event or a hand-off is a few kB; a letter larger than DEAD_ENTRY_MAX (an async upload's file) loses its
# body, then its headers, and says so: it can no longer be replayed.
DEAD_MAX = 500
DEAD_MAX_AGE_SECONDS = 7 * 86400
DEAD_ENTRY_MAX = 8 * 1024
# Bytes of queued calls that came with no verified caller (functions that check nothing), all lanes together.
OPEN_BYTES = "faas:queue:open-bytes"

# Due retries go back onto the stream in one atomic step, so none is lost or doubled between the two.
_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'payload', member)
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""

# Calls of no verified caller are admitted while their bytes in the queue stay under a budget.
_ADMIT = """
local held = tonumber(redis.call('GET', KEYS[1]) or '0')
if held + tonumber(ARGV[1]) > tonumber(ARGV[2]) then
  return 0
end
redis.call('INCRBY', KEYS[1], ARGV[1])
return 1
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
    lane: str = ""  # "" is the default lane
    attempt: int = 0
    enqueued_at: float = 0.0
    last_status: int | None = None
    last_error: str | None = None
    # Who called (access.Caller): how it was verified and its key id; its secret is never stored.
    caller_kind: str = ""
    key_id: str = ""
    # Bytes this call holds of the open budget (admit_open), given back when it leaves the queue.
    counted: int = 0
    # Size of a body a dead letter did not keep (over DEAD_ENTRY_MAX): such a letter cannot be replayed.
    body_dropped: int = 0
    headers_dropped: bool = False

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


def stream_of(lane: str) -> str:
    return f"{STREAM}:lane:{lane}" if lane else STREAM


def delayed_of(lane: str) -> str:
    return f"{DELAYED}:lane:{lane}" if lane else DELAYED


class AsyncQueue:
    """Accepts invocations durably and runs them with bounded, backed-off retries; consumers are `gateway-<i>`.

    Invocations wait in lanes, one stream each: the default lane, and the named lanes the gateway is
    started with (by default `uploads` and `chunks`, asked for by the hand-offs of uploads and of a large
    document's chunks). Workers take from the lanes in turn, so a flood in one lane (thousands of bucket
    drops) delays another lane's next invocation by at most one invocation per worker, not by the flood.
    """

    def __init__(self, redis_url: str, max_attempts: int = 8, backoff_base: float = 1.0, backoff_cap: float = 30.0,
                 reclaim_idle: float = 30.0, lanes: tuple[str, ...] = ()) -> None:
        # Typed loosely: redis-py's stream replies are unions over RESP2/RESP3 shapes; we use RESP2.
        self.redis: Any = aioredis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=10)
        self.policy = RetryPolicy(max_attempts=max_attempts, backoff_base=backoff_base, backoff_cap=backoff_cap)
        # A worker touches the entry it runs every third of this (_kept_claimed), however long the call
        # takes; an entry idle this long was left by a worker that died or lost its acknowledgement.
        self.reclaim_idle_ms = int(reclaim_idle * 1000)
        self.lanes = ("", *sorted(set(lanes) - {""}))
        self.streams = tuple(stream_of(lane) for lane in self.lanes)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def lane_of(self, requested: str | None) -> str:
        return requested if requested in self.lanes else ""

    async def ensure_group(self) -> None:
        for stream in self.streams:
            try:
                # From id 0: entries added before the group existed are delivered too.
                await self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except ResponseError as e:
                if "BUSYGROUP" not in str(e):
                    raise

    async def enqueue(self, invocation: Invocation) -> str:
        invocation.enqueued_at = invocation.enqueued_at or time.time()
        invocation.lane = self.lane_of(invocation.lane)
        entry_id = await self.redis.xadd(stream_of(invocation.lane), {"payload": invocation.dumps()})
        log.info("queue.enqueued", function=invocation.function, call_id=invocation.call_id, lane=invocation.lane,
                 entry=entry_id.decode() if isinstance(entry_id, bytes) else entry_id)
        return str(entry_id)

    async def admit_open(self, size: int, budget: int) -> bool:
        """Count `size` bytes against the open budget; False (nothing counted) when they would exceed it."""
        return bool(await self.redis.eval(_ADMIT, 1, OPEN_BYTES, size, budget))

    async def give_back(self, size: int) -> None:
        """Return bytes admit_open counted for a call that was not queued after all."""
        await self.redis.decrby(OPEN_BYTES, size)

    def _release(self, pipe: Any, invocation: Invocation) -> None:
        if invocation.counted:
            pipe.decrby(OPEN_BYTES, invocation.counted)
            invocation.counted = 0

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

    async def _read(self, consumer: str, streams: dict[str, str], block: int | None = None
                    ) -> list[tuple[str, bytes, dict[bytes, bytes] | None]]:
        """At most one entry per stream: (stream, entry id, fields)."""
        reply = await self.redis.xreadgroup(GROUP, consumer, streams, count=1, block=block)
        return [(name.decode() if isinstance(name, bytes) else name, entry_id, fields)
                for name, entries in reply or [] for entry_id, fields in entries]

    async def _next(self, consumer: str, turn: int) -> list[tuple[str, bytes, dict[bytes, bytes] | None]]:
        """The next new entry, looking at the lanes from a different one each turn; else wait for any."""
        for i in range(len(self.streams)):
            stream = self.streams[(turn + i) % len(self.streams)]
            entries = await self._read(consumer, {stream: ">"})
            if entries:
                return entries
        return await self._read(consumer, {stream: ">" for stream in self.streams}, block=1000)

    async def _consume(self, consumer: str, invoke: Invoker, callback: Callback) -> None:
        # Own pending entries first: what this consumer had taken but not finished before a restart.
        backlog = True
        last_reclaim = 0.0
        turn = 0
        while not self._stopping:
            try:
                if backlog:
                    entries = await self._read(consumer, {stream: "0" for stream in self.streams})
                    if not entries:
                        backlog = False
                        continue
                else:
                    if time.monotonic() - last_reclaim > 10:
                        last_reclaim = time.monotonic()
                        claimed = 0
                        for stream in self.streams:
                            _next, taken, *_ = await self.redis.xautoclaim(
                                stream, GROUP, consumer, min_idle_time=self.reclaim_idle_ms, count=10)
                            claimed += len(taken)
                        if claimed:
                            log.warning("queue.reclaimed", consumer=consumer, entries=claimed)
                            backlog = True
                            continue
                    entries = await self._next(consumer, turn)
                    turn += 1
                for stream, entry_id, fields in entries:
                    await self._handle(consumer, stream, entry_id, fields, invoke, callback)
            except asyncio.CancelledError:
                raise
            except RedisError as e:
                log.warning("queue.redis_error", consumer=consumer, error=str(e))
                await asyncio.sleep(1.0)

    @contextlib.asynccontextmanager
    async def _kept_claimed(self, consumer: str, stream: str, entry_id: bytes) -> AsyncIterator[None]:
        """Reset the entry's idle time while its call runs, so only an abandoned entry is ever reclaimed.

        The reclaim bound is then short and the same for every function (a long OCR call is touched, not
        reclaimed), instead of the longest exec_timeout: an acknowledgement lost to a Redis restart is
        redelivered after reclaim_idle, not after a quarter of an hour.
        """

        async def touch() -> None:
            while True:
                await asyncio.sleep(self.reclaim_idle_ms / 3000)
                try:
                    await self.redis.xclaim(stream, GROUP, consumer, min_idle_time=0, message_ids=[entry_id],
                                            justid=True)
                except RedisError as e:
                    log.warning("queue.touch_failed", error=str(e))

        task = asyncio.create_task(touch())
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _handle(self, consumer: str, stream: str, entry_id: bytes, fields: dict[bytes, bytes] | None,
                      invoke: Invoker, callback: Callback) -> None:
        raw = fields.get(b"payload") if fields else None
        if raw is None:  # a deleted entry still listed in the pending list
            await self.redis.xack(stream, GROUP, entry_id)
            return
        invocation = Invocation.loads(raw)
        try:
            async with self._kept_claimed(consumer, stream, entry_id):
                result = await invoke(invocation)
        except (asyncio.CancelledError, RedisError):
            raise
        except Exception as e:
            # A bug or a malformed entry must cost attempts and end in the dead letters, not kill this
            # consumer or come back forever from its pending list.
            log.exception("queue.invoke_failed", function=invocation.function, call_id=invocation.call_id)
            result = Result(0, b"", {}, f"gateway error: {e!r}")
        verdict = decide(self.policy, invocation.attempt, result.status, result.headers, random.uniform(0.8, 1.2))
        if verdict.action == Action.DONE:
            async with self.redis.pipeline(transaction=True) as pipe:
                self._release(pipe, invocation)
                pipe.xack(stream, GROUP, entry_id)
                pipe.xdel(stream, entry_id)
                await pipe.execute()
            log.info("queue.done", function=invocation.function, call_id=invocation.call_id,
                     attempt=invocation.attempt, status=result.status)
            if invocation.callback_url:
                await callback(invocation, result)
            return
        invocation.attempt = verdict.attempts
        invocation.last_status = result.status
        invocation.last_error = result.error or result.body[:500].decode(errors="replace")
        async with self.redis.pipeline(transaction=True) as pipe:
            if verdict.action == Action.RETRY:
                pipe.zadd(delayed_of(invocation.lane), {invocation.dumps(): time.time() + verdict.delay})
                log.warning("queue.retry_scheduled", function=invocation.function, call_id=invocation.call_id,
                            attempt=invocation.attempt, status=result.status, delay_s=round(verdict.delay, 2),
                            error=invocation.last_error)
            else:
                self._release(pipe, invocation)
                self._bury(pipe, invocation)
                log.error("queue.dead_lettered", function=invocation.function, call_id=invocation.call_id,
                          attempts=invocation.attempt, status=result.status, error=invocation.last_error)
                if invocation.callback_url:
                    await callback(invocation, result)
            pipe.xack(stream, GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()

    @staticmethod
    def _bury(pipe: Any, invocation: Invocation) -> None:
        """Add a dead letter within the bounds: its body only if small, the oldest and the too old trimmed."""
        payload = invocation.dumps()
        if len(payload) > DEAD_ENTRY_MAX and invocation.body:
            invocation.body_dropped, invocation.body = len(invocation.body), b""
            payload = invocation.dumps()
        if len(payload) > DEAD_ENTRY_MAX:
            invocation.headers, invocation.headers_dropped = {}, True
            payload = invocation.dumps()
        pipe.xadd(DEAD, {"payload": payload, "failed_at": str(time.time())}, maxlen=DEAD_MAX, approximate=False)
        oldest = int((time.time() - DEAD_MAX_AGE_SECONDS) * 1000)
        pipe.xtrim(DEAD, minid=f"{oldest}-0", approximate=False)

    async def _promote_due(self) -> None:
        last_trim = 0.0
        while not self._stopping:
            try:
                for lane in self.lanes:
                    await self.redis.eval(_PROMOTE, 2, delayed_of(lane), stream_of(lane), time.time())
                if time.monotonic() - last_trim > 60:
                    # Letters age out even when no new one comes to trim them.
                    last_trim = time.monotonic()
                    await self.redis.xtrim(DEAD, minid=f"{int((time.time() - DEAD_MAX_AGE_SECONDS) * 1000)}-0",
                                           approximate=False)
            except RedisError as e:
                log.warning("queue.redis_error", task="promote", error=str(e))
            await asyncio.sleep(0.2)

    # --- operator view -------------------------------------------------------------------------
    async def stats(self) -> dict[str, Any]:
        """Totals over the lanes, and each lane's own under `lanes` (the default lane is `default`)."""
        lanes: dict[str, dict[str, int]] = {}
        for lane in self.lanes:
            pending = await self.redis.xpending(stream_of(lane), GROUP)
            lanes[lane or "default"] = {
                "queued": await self.redis.xlen(stream_of(lane)),
                "pending": int(pending["pending"]) if pending else 0,
                "delayed": await self.redis.zcard(delayed_of(lane)),
            }
        totals = {name: sum(lane[name] for lane in lanes.values()) for name in ("queued", "pending", "delayed")}
        open_bytes = int(await self.redis.get(OPEN_BYTES) or 0)
        return {**totals, "dead": await self.redis.xlen(DEAD), "open_bytes": open_bytes, "lanes": lanes}

    async def dead_letters(self, count: int = 100) -> list[dict[str, Any]]:
        out = []
        for entry_id, fields in await self.redis.xrange(DEAD, count=count):
            inv = Invocation.loads(fields[b"payload"])
            out.append({
                "id": entry_id.decode(), "function": inv.function, "call_id": inv.call_id,
                "attempts": inv.attempt, "last_status": inv.last_status, "last_error": inv.last_error,
                "failed_at": float(fields.get(b"failed_at", b"0")),
                "body_bytes": inv.body_dropped or len(inv.body),
                "replayable": not (inv.body_dropped or inv.headers_dropped),
            })
        return out

    async def replay(self, dead_id: str) -> bool:
        """Put a dead letter back on the queue with its attempts reset; False when there is no such entry.

        Raises BodyNotKept for a letter whose body was too large to keep."""
        try:
            entries = await self.redis.xrange(DEAD, min=dead_id, max=dead_id)
        except ResponseError:
            return False  # not a stream id
        if not entries:
            return False
        inv = Invocation.loads(entries[0][1][b"payload"])
        if inv.body_dropped or inv.headers_dropped:
            raise BodyNotKept(f"dead letter {dead_id} was over {DEAD_ENTRY_MAX} bytes and kept only what failed, "
                              "not the call itself; send the call again instead")
        inv.attempt, inv.last_status, inv.last_error = 0, None, None
        inv.lane = self.lane_of(inv.lane)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(stream_of(inv.lane), {"payload": inv.dumps()})
            pipe.xdel(DEAD, dead_id)
            await pipe.execute()
        log.info("queue.replayed", function=inv.function, call_id=inv.call_id, dead_id=dead_id)
        return True


class BodyNotKept(Exception):
    """A dead letter that was over DEAD_ENTRY_MAX kept too little of its call to replay it."""


def new_call_id() -> str:
    """An id for a call that came without X-Call-Id, as OpenFaaS makes one."""
    return str(uuid.uuid4())
