"""The gateway's connections: a deadline for a request's headers, a cap per client address, JSON for malformed HTTP.

aiohttp holds a connection that sends nothing for its keep-alive timeout (75 s by default) and answers a
malformed request in plain text. Here a connection must deliver a request's headers within `header_timeout`
of opening or of its previous answer; one client address (an IPv6 /64) holds at most `per_client`
connections, and all such clients together `total`; addresses in `exempt` (the functions and MinIO on this
machine) are not counted. A refused connection gets a 503 JSON answer and is closed. Refusals and malformed
requests are logged as counts per interval, not one line each.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from common.logging import get_logger

log = get_logger()

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_of(peer: Any) -> str:
    """The address a connection counts against: the IPv4 address, or the /64 of an IPv6 one (one host's)."""
    host = peer[0] if isinstance(peer, (tuple, list)) and peer else str(peer or "")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def raw_json_response(status: int, reason: str, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, for where there is no request to answer yet."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


@dataclass
class Tally:
    """Counts of repeated events, logged as one line per event name and interval."""

    interval: float = 10.0
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    since: float = field(default_factory=time.monotonic)

    def add(self, event: str, reason: str) -> None:
        self.counts[(event, reason)] += 1
        self.flush()

    def flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.counts or (not force and now - self.since < self.interval):
            return
        by_event: dict[str, dict[str, int]] = {}
        for (event, reason), count in self.counts.items():
            by_event.setdefault(event, {})[reason] = count
        for event, reasons in sorted(by_event.items()):
            log.warning(event, counts=reasons, total=sum(reasons.values()), seconds=round(now - self.since, 1))
        self.counts.clear()
        self.since = now


@dataclass
class ConnectionRules:
    """The bounds on connections; `exempt` lists networks that are never counted nor refused."""

    header_timeout: float = 10.0
    per_client: int = 64
    total: int = 256
    exempt: tuple[str, ...] = ("127.0.0.1/32", "::1/128")

    def is_exempt(self, client: str) -> bool:
        try:
            network = ipaddress.ip_network(client, strict=False)
        except ValueError:
            return False
        return any(network.subnet_of(ipaddress.ip_network(e, strict=False))  # type: ignore[arg-type]
                   for e in self.exempt if ipaddress.ip_network(e, strict=False).version == network.version)


class ConnectionCounts:
    """Open connections per client address; admit() decides, release() forgets (pure bookkeeping)."""

    def __init__(self, rules: ConnectionRules) -> None:
        self.rules = rules
        self.per_client: Counter[str] = Counter()
        self.total = 0

    def admit(self, client: str) -> str | None:
        """None when the connection may open (and is counted), else the reason it may not."""
        if self.rules.is_exempt(client):
            return None
        if self.per_client[client] >= self.rules.per_client:
            return "per_client"
        if self.total >= self.rules.total:
            return "total"
        self.per_client[client] += 1
        self.total += 1
        return None

    def release(self, client: str) -> None:
        if self.per_client.get(client, 0) > 0:
            self.per_client[client] -= 1
            if not self.per_client[client]:
                del self.per_client[client]
            self.total -= 1


# aiohttp's parser errors carry their reason in the exception's class: a code each, stable for clients.
def parse_error_code(exc: BaseException | None) -> str:
    name = type(exc).__name__ if exc is not None else ""
    return {"LineTooLong": "header_too_large", "BadStatusLine": "bad_request_line", "BadHttpMethod": "bad_method",
            "InvalidHeader": "bad_header", "InvalidURLError": "bad_url", "TransferEncodingError": "bad_body",
            "ContentLengthError": "bad_body", "BadHttpMessage": "bad_request"}.get(name, "bad_request")


# After an answer that leaves a body unread, the gateway stops sending (FIN) and throws away what still comes
# for at most this long and this much, then drops the connection: a plain close with unread bytes is a reset,
# which can destroy the answer before the client reads it; reading on without a bound let a client push
# gigabytes (aiohttp's lingering close reads for 10 s, whatever the amount).
DRAIN_SECONDS = 1.0
DRAIN_BYTES = 1024 * 1024


class DrainingTransport:
    """The connection's transport, whose close() half-closes and drains within bounds (see DRAIN_*)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self.draining = False
        self.drained = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def close(self) -> None:
        if self.draining or self._transport.is_closing():
            return
        self.draining = True
        try:
            self._transport.write_eof()  # sent once the answer has left
        except (OSError, RuntimeError):
            self._transport.close()
            return
        self._loop.call_later(DRAIN_SECONDS, self._transport.abort)

    def swallow(self, size: int) -> None:
        """Bytes that came after close(): counted, dropped, and the connection ends past DRAIN_BYTES."""
        self.drained += size
        if self.drained > DRAIN_BYTES:
            self._transport.abort()

    def finish(self) -> None:
        """The client closed its side too: the connection can end now."""
        self._transport.close()


class EdgeHandler(RequestHandler):
    """aiohttp's connection handler with the bounds above, and JSON for what it cannot parse."""

    def __init__(self, manager: web.Server, counts: ConnectionCounts, tally: Tally, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.counts, self.tally = counts, tally
        self.client: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        client = client_of(transport.get_extra_info("peername"))
        refused = self.counts.admit(client)
        if refused is not None:
            self.tally.add("edge.connections_refused", refused)
            assert isinstance(transport, asyncio.Transport)
            transport.write(raw_json_response(503, "Service Unavailable", "too_many_connections",
                                              "this client address holds too many connections; close some"))
            transport.close()
            self._force_close = True
            return
        self.client = client
        assert isinstance(transport, asyncio.Transport)
        self.draining = DrainingTransport(transport, asyncio.get_running_loop())
        super().connection_made(self.draining)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self.client is None:
            return  # refused: its transport is closing
        if self.draining.draining:
            self.draining.swallow(len(data))
            return
        super().data_received(data)

    def eof_received(self) -> None:
        if self.client is not None and self.draining.draining:
            self.draining.finish()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.client is None:
            return
        self.counts.release(self.client)
        self.client = None
        super().connection_lost(exc)

    def _process_keepalive(self) -> None:
        # The keep-alive timer is also what closes a connection whose headers are late (see serve()).
        waiting = self._waiter is not None and not self._waiter.done() and not self._force_close
        super()._process_keepalive()
        if waiting and self._force_close:
            self.tally.add("edge.connections_closed", "headers_late_or_idle")

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        # One count per kind, not a traceback per malformed request (anyone can send them).
        code = parse_error_code(exc) if status < 500 else "internal_error"
        self.tally.add("edge.bad_requests", code)
        if request.writer.output_size > 0:
            raise ConnectionError("the answer had begun; the connection is closed")
        text = (message or "the request is not valid HTTP") if status < 500 else "internal error; see the gateway's log"
        response = web.json_response({"error": {"code": code, "message": text[:200]}}, status=status)
        response.force_close()
        return response


async def serve(app: web.Application, host: str, port: int, rules: ConnectionRules,
                shutdown_timeout: float = 5.0, tally: Tally | None = None) -> None:
    """Run `app` until SIGTERM or SIGINT, with the connection bounds of `rules`.

    The header deadline is aiohttp's keep-alive timer, which starts when a connection opens and again after
    each answer and closes a connection still waiting for a request's headers; a refused body is never read
    on (no lingering): its connection is closed once the answer is sent.
    """
    tally = tally or Tally()
    counts = ConnectionCounts(rules)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    manager = runner.server
    assert manager is not None
    loop = asyncio.get_running_loop()

    def protocol() -> EdgeHandler:
        return EdgeHandler(manager, counts, tally, loop=loop, keepalive_timeout=rules.header_timeout,
                           lingering_time=0.0, access_log=None)

    server = await loop.create_server(protocol, host, port, backlog=1024, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def flush_tally() -> None:
        while True:
            await asyncio.sleep(tally.interval)
            tally.flush(force=True)

    flusher = asyncio.create_task(flush_tally())
    try:
        await stop.wait()
    finally:
        flusher.cancel()
        server.close()
        await runner.cleanup()
        tally.flush(force=True)
