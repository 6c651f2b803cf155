"""The gateway's edge under a client with no key: bounded queue, idle connections, malformed HTTP, refused bodies."""

from __future__ import annotations

import json
import re
import select
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ocrstack.services import Redis, free_port
from tests.integration.test_gateway import MAX_BODY, GatewayUnderTest, write_test_stack

pytestmark = pytest.mark.integration

HEADER_TIMEOUT = 2
PER_CLIENT = 20
TOTAL = 400
OPEN_BUDGET = 3 * 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = Redis(tmp_path_factory.mktemp("edge-redis"), free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[GatewayUnderTest]:
    """A gateway with small edge bounds and no queue workers (what is queued stays queued)."""
    root = tmp_path_factory.mktemp("edge-gateway")
    write_test_stack(root)
    gateway = GatewayUnderTest(root, redis_url)
    gateway.start(queue_workers=0, extra_args=(
        "--header-timeout", str(HEADER_TIMEOUT), "--max-connections-per-client", str(PER_CLIENT),
        "--max-connections", str(TOTAL), "--open-queue-bytes", str(OPEN_BUDGET)))
    try:
        yield gateway
    finally:
        gateway.stop()


def raw_exchange(port: int, request: bytes, timeout: float = 5.0) -> tuple[int, dict[str, object]]:
    """Send bytes as they are, read the answer to its end: (status, JSON body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (b"GARBAGE\r\n\r\n", 400, None),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, None),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 400, "header_too_large"),
    (b"GET /function/echo/%ff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400, "invalid_path"),
    (b"GET /function/status/%ff%fe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400, "invalid_path"),
    (b"GET /no/such/route HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "not_found"),
    (b"GET /async-function/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, "method_not_allowed"),
    (b"POST /async-function/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n"
     b"X-Callback-Url: http://127.0.0.1:99999/\r\n\r\nx", 400, "callback_refused"),
    (b"POST /async-function/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n"
     b"X-Callback-Url: http://[::1/\r\n\r\nx", 400, "callback_refused"),
    (b"POST /async-function/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n"
     b"X-Call-Id: " + b"c" * 100 + b"\r\n\r\nx", 400, "invalid_request_id"),
])
def test_every_answer_to_bad_input_is_json_with_a_code(edge: GatewayUnderTest, request_bytes: bytes, status: int,
                                                       code: str | None) -> None:
    """Malformed HTTP, paths that are not UTF-8, bad callback URLs, unknown routes: JSON with a stable code, no 500."""
    got, body = raw_exchange(edge.port, request_bytes)
    error = body["error"]
    assert got == status and isinstance(error, dict) and re.fullmatch(r"[a-z_]+", error["code"])
    assert code is None or error["code"] == code


def test_anonymous_async_calls_cannot_grow_redis_past_the_budget_nor_store_a_credential(
        edge: GatewayUnderTest, redis_url: str) -> None:
    """Calls of no verified caller stop at --open-queue-bytes (503 queue_full); none keeps its Authorization."""
    store = redis.Redis.from_url(redis_url)
    used_before = int(store.info("memory")["used_memory"])
    statuses = []
    for i in range(12):
        reply = edge.client.request("POST", "/async-function/echo", body=b"x" * (MAX_BODY - 4096), headers={
            "Authorization": "Bearer ocr_0123456789ab_not-a-real-secret-but-a-marker-xyz", "X-Call-Id": f"open-{i}"})
        statuses.append(reply.status)
        if reply.status != 202:
            assert reply.json()["error"]["code"] == "queue_full"
    # Counted as stored (base64 and headers): fewer than the budget's worth of raw bodies, then refused.
    accepted = statuses.count(202)
    assert 0 < accepted < OPEN_BUDGET // (MAX_BODY - 4096) and statuses == [202] * accepted + [503] * (12 - accepted)
    growth = int(store.info("memory")["used_memory"]) - used_before
    assert growth < 16 * 1024 * 1024, growth
    for key in store.scan_iter():
        kind = store.type(key)
        dump = repr(store.xrange(key) if kind == b"stream" else store.zrange(key, 0, -1) if kind == b"zset"
                    else store.get(key) if kind == b"string" else b"")
        assert "not-a-real-secret" not in dump and "Authorization" not in dump, key


def test_an_async_body_over_the_async_bound_is_refused_unread(edge: GatewayUnderTest) -> None:
    """A declared length over the async bound is answered 413 before the body, and the connection ends."""
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as conn:
        conn.sendall(b"POST /async-function/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n")
        answer = conn.recv(65536)
        assert answer.startswith(b"HTTP/1.1 413") and b"payload_too_large" in answer


def pushed_after_answer(port: int, head: bytes, seconds: float = 5.0) -> tuple[bytes, int, float]:
    """Send `head`, then body bytes as fast as the gateway takes them: (answer, bytes taken after it, seconds
    from the answer until the gateway closed)."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
    conn.sendall(head)
    conn.setblocking(False)
    chunk = b"\0" * (1024 * 1024)
    answer, after, answered_at = b"", 0, None
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            readable, writable, _ = select.select([conn], [conn], [], 0.5)
            if readable:
                try:
                    data = conn.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                answer += data
                answered_at = answered_at or time.monotonic()
            if writable:
                try:
                    sent = conn.send(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break
                if answered_at is not None:
                    after += sent
    finally:
        conn.close()
    assert answered_at is not None, "no answer"
    return answer, after, time.monotonic() - answered_at


@pytest.mark.parametrize("path", ["/async-function/nope", "/no/such/route", "/function/echo"])
def test_a_refused_body_is_not_read_on(edge: GatewayUnderTest, path: str) -> None:
    """After refusing a 10 GB body (unknown function, no route, over the limit) the gateway closes at once,
    instead of reading on (aiohttp lingers 10 s by default, which let a client push gigabytes)."""
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {10**10}\r\n\r\n".encode()
    answer, after, closing = pushed_after_answer(edge.port, head)
    assert answer.split(b"\r\n", 1)[0].split(b" ")[1] in (b"404", b"413")
    assert b"Connection: close" in answer or b"connection: close" in answer.lower()
    assert after < 64 * 1024 * 1024 and closing < 2.0, (after, closing)


def first_bytes(conns: list[socket.socket], wait: float) -> dict[socket.socket, bytes]:
    """What each connection that is readable within `wait` seconds gives (b"" when the gateway closed it)."""
    found: dict[socket.socket, bytes] = {}
    with selectors.DefaultSelector() as selector:
        for conn in conns:
            selector.register(conn, selectors.EVENT_READ)
        deadline = time.monotonic() + wait
        while len(found) < len(conns) and time.monotonic() < deadline:
            for key, _ in selector.select(max(0.0, deadline - time.monotonic())):
                conn = key.fileobj
                assert isinstance(conn, socket.socket)
                try:
                    found[conn] = conn.recv(4096)
                except ConnectionResetError:
                    found[conn] = b""
                selector.unregister(conn)
    return found


def connect_from(address: str, port: int) -> socket.socket:
    conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    conn.settimeout(5)
    conn.bind((address, 0))
    conn.connect(("127.0.0.1", port))
    return conn


def trickled_until_closed(port: int) -> float:
    """Seconds a connection sending its headers a byte every 0.2 s is kept (headers that never end)."""
    with connect_from("127.0.0.200", port) as trickle:
        trickle.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        while time.monotonic() - started < 30:
            try:
                trickle.send(b"X")
            except (BrokenPipeError, ConnectionResetError):
                break
            if first_bytes([trickle], 0.2).get(trickle) == b"":
                break
        return time.monotonic() - started


def test_headers_that_never_end_are_cut_at_the_deadline(edge: GatewayUnderTest) -> None:
    """A client trickling its headers a byte at a time is closed when the header deadline passes, not after
    aiohttp's 75 s keep-alive."""
    assert HEADER_TIMEOUT - 0.5 < trickled_until_closed(edge.port) < HEADER_TIMEOUT + 2


def test_idle_connections_from_many_addresses_neither_starve_others_nor_outlive_the_header_deadline(
        edge: GatewayUnderTest) -> None:
    """3,000 connections that send nothing, from 60 addresses: each address
    gets PER_CLIENT, all together TOTAL, the rest a 503; /healthz and a 200 kB call from 127.0.0.1 are answered
    within 1 s throughout; the held ones are closed once the header deadline passes; the refusals are a few
    counted log lines, not one each."""
    log_path = edge.root / "gateway.log"
    log_start = log_path.stat().st_size
    rss_before = rss_bytes(edge.proc.pid)  # type: ignore[union-attr]
    idle: list[socket.socket] = []
    worst = 0.0
    try:
        for i in range(3000):
            idle.append(connect_from(f"127.0.0.{2 + i % 60}", edge.port))
            if i % 500 == 0:
                for method, path, body in (("GET", "/healthz", None), ("POST", "/function/echo", b"u" * 200_000)):
                    started = time.monotonic()
                    assert edge.client.request(method, path, body=body).status == 200
                    worst = max(worst, time.monotonic() - started)
        assert worst < 1.0, worst
        answers = first_bytes(idle, 1.0)
        refused = sum(data.startswith(b"HTTP/1.1 503") and b"too_many_connections" in data for data in answers.values())
        assert refused >= 3000 - TOTAL - 200, refused  # a few more admitted as the deadline frees places
        time.sleep(HEADER_TIMEOUT + 0.5)
        admitted = [conn for conn in idle if conn not in answers]
        closed = first_bytes(admitted, 1.0)
        assert len(closed) == len(admitted) and set(closed.values()) <= {b""}, (len(closed), len(admitted))
        growth = rss_bytes(edge.proc.pid) - rss_before  # type: ignore[union-attr]
        assert growth < 64 * 1024 * 1024, growth
    finally:
        for conn in idle:
            conn.close()
    time.sleep(11)  # the tally writes its counts every 10 s
    with log_path.open("rb") as log:
        log.seek(log_start)
        lines = [line for line in log.read().decode(errors="replace").splitlines() if "edge.connections_refused" in line]
    assert 1 <= len(lines) <= 5, lines
    assert sum(json.loads(line)["total"] for line in lines) >= 2000


def test_a_deployment_with_an_invalid_setting_is_refused_naming_it_and_the_function_keeps_working(
        edge: GatewayUnderTest) -> None:
    """MAX_UPLOAD_BYTES=abc or exec_timeout=soon would stop the function at its first call: 400 setting_invalid."""
    for env, named in (({"MAX_UPLOAD_BYTES": "abc"}, "MAX_UPLOAD_BYTES"), ({"exec_timeout": "soon"}, "exec_timeout")):
        reply = edge.client.request("PUT", "/system/functions", json={"service": "echo", "image": "test/echo:1",
                                                                      "envVars": env})
        assert reply.status == 400, reply.body
        error = reply.json()["error"]
        assert error["code"] == "setting_invalid" and named in error["message"]
    assert edge.client.request("POST", "/function/echo", body=b"x" * 1000).status == 200
