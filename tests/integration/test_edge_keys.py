"""The product's gateway checks an async call's key as the function would, before queueing it, and stores no secret."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from common.config import Settings
from ocrstack.services import free_port, port_open
from tests.conftest import REPO_ROOT
from tests.integration.test_gateway_edge import pushed_after_answer
from tests.support import Gateway, image_bytes, receiver, wait_until

pytestmark = pytest.mark.integration

FAKE_KEY = "ocr_000000000000_" + "A" * 43


def queued_entries(store: Any) -> int:
    """Entries in every lane of the async queue, retries and dead letters included."""
    return sum(store.xlen(k) if store.type(k) == b"stream" else store.zcard(k) for k in store.scan_iter("faas:queue*"))


def refused_before_the_body(port: int, path: str, headers: str) -> tuple[bytes, dict[str, Any]]:
    """Announce a 50 MiB body, send 64 kB of it: (the answer's head, its JSON), read before the rest was sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {50 * 1024 * 1024}\r\n{headers}\r\n".encode())
        conn.sendall(b"\0" * 65536)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head, json.loads(body)


@pytest.mark.parametrize(("path", "headers", "code"), [
    ("/async-function/upload", "", "unauthenticated"),
    ("/function/upload", "", "unauthenticated"),
    ("/function/upload", f"Authorization: Bearer {FAKE_KEY}\r\n", "invalid_api_key"),
    ("/async-function/upload", f"Authorization: Bearer {FAKE_KEY}\r\n", "invalid_api_key"),
    ("/async-function/upload", "X-Api-Key: not-a-key\r\n", "invalid_api_key"),
    ("/async-function/status/abc", "", "unauthenticated"),
    ("/async-function/ocr-process", "", "unauthenticated"),
    ("/async-function/ocr-process", f"Authorization: Bearer {FAKE_KEY}\r\n", "unauthenticated"),
])
def test_a_call_without_a_valid_key_is_refused_before_its_body_is_taken(
        stack: Any, settings: Settings, path: str, headers: str, code: str) -> None:
    """401 with the functions' own code and challenge, answered before the body is read (async: nothing is
    queued; sync: nothing is spooled for the function)."""
    store = redis.Redis.from_url(settings.redis_url)
    before = queued_entries(store)
    head, body = refused_before_the_body(stack.ports.gateway, path, headers)
    assert head.startswith(b"HTTP/1.1 401") and b"WWW-Authenticate: Bearer" in head
    assert b"Connection: close" in head and body["error"]["code"] == code
    assert queued_entries(store) == before


def test_an_async_upload_with_a_key_runs_as_its_owner_and_its_secret_is_never_stored(
        gateway: Gateway, settings: Settings) -> None:
    """The queue keeps the key id, the upload runs as that key (its owner reads the job), and no byte of the
    key's secret is in Redis."""
    secret = gateway.default_headers["Authorization"].rsplit("_", 1)[1]
    with receiver() as (url, received):
        reply = gateway.request("POST", "/async-function/upload", headers={"X-Callback-Url": f"{url}/done"},
                                fields={"file": ("page.png", image_bytes(["Queued upload"]), "image/png")})
        assert reply.status == 202, reply.body
        posted = wait_until(lambda: received[0] if received else None, 60, what="the upload's callback")
    assert posted.headers["X-Function-Status"] == "202", posted.body
    job = gateway.wait_final(json.loads(posted.body)["job_id"])
    assert job["status"] == "completed"
    store = redis.Redis.from_url(settings.redis_url)
    for key in store.scan_iter():
        kind = store.type(key)
        value = (store.xrange(key) if kind == b"stream" else store.zrange(key, 0, -1) if kind == b"zset"
                 else store.get(key) if kind == b"string" else store.hgetall(key) if kind == b"hash" else b"")
        assert secret not in repr(value), key


def test_a_path_that_is_not_utf8_is_a_400_without_a_key(stack: Any) -> None:
    """GET /function/status/%ff: 400 invalid_path from the gateway, not a 500 from the function."""
    reply = Gateway(stack.gateway_url).request("GET", "/function/status/%ff")
    assert reply.status == 400 and reply.json()["error"]["code"] == "invalid_path"


def test_a_verified_key_header_from_a_client_counts_for_nothing(stack: Any, gateway: Gateway) -> None:
    """X-Verified-Key-Id names a key only beside the internal token: a client naming a real key id with a
    bogus key is refused."""
    reply = Gateway(stack.gateway_url).request("GET", "/function/list", headers={
        "Authorization": f"Bearer {FAKE_KEY}", "X-Verified-Key-Id": gateway.key_id})
    assert reply.status == 401 and reply.json()["error"]["code"] == "invalid_api_key"


def test_a_function_reached_directly_does_not_read_on_a_refused_body(stack: Any, tmp_path: Path) -> None:
    """upload served by functions-framework alone (as on a host without our gateway): a 401 to a 10 GB body
    closes the connection instead of reading the body on."""
    port = free_port()
    env = dict(os.environ, **stack.function_env())
    server = subprocess.Popen(
        [sys.executable, "-m", "functions_framework", "--target", "handle", "--source",
         str(REPO_ROOT / "functions/upload/handler.py"), "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=REPO_ROOT, stdout=(tmp_path / "upload.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: port_open(port), 30, what="the upload function")
        head = f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {10**10}\r\n\r\n".encode()
        answer, after, closing = pushed_after_answer(port, head)
        assert answer.startswith(b"HTTP/1.1 401")
        assert after < 64 * 1024 * 1024 and closing < 2.0, (after, closing)
    finally:
        server.terminate()
        server.wait(timeout=20)
