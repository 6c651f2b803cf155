"""The pieces that let one request pipeline run on the sync server and on an event loop (web/api.py, web/loop.py,
common/blocking.py); the status function on its loop, end to end, is in tests/integration/test_status_on_loop.py."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import flask
import pytest
from starlette.requests import Request

from common import blocking
from common.adapters import cache, db, storage
from common.config import load_settings
from common.web import api, loop

# Nothing listens on port 1: a client that tried to connect would fail, not hang.
SETTINGS = load_settings({"MYSQL_PASSWORD": "x", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b", "MYSQL_PORT": "1",
                          "REDIS_URL": "redis://127.0.0.1:1/0", "S3_ENDPOINT": "127.0.0.1:1"})


@pytest.mark.parametrize("reach", [lambda: cache.redis_client(SETTINGS), lambda: db.get_engine(SETTINGS),
                                   lambda: storage.minio_client(SETTINGS)], ids=["redis", "mysql", "minio"])
def test_every_adapter_refuses_to_wait_where_waiting_is_forbidden(reach: Any) -> None:
    """Each service's client is refused before any connection is tried, so the call can be run again elsewhere."""
    with blocking.forbidden(), pytest.raises(blocking.WouldBlock):
        reach()


def test_would_block_passes_through_except_exception() -> None:
    """Code between an adapter and the loop that catches Exception (to log or answer an error) lets it by."""
    def guarded() -> None:
        try:
            blocking.check("mysql")
        except Exception:  # noqa: BLE001 (the point of the test)
            pytest.fail("WouldBlock was caught as an Exception")

    with blocking.forbidden(), pytest.raises(blocking.WouldBlock) as raised:
        guarded()
    assert raised.value.service == "mysql"
    blocking.check("mysql")  # outside the block, nothing is refused


def test_a_presigned_link_needs_no_network() -> None:
    """A completed job's cached status signs its result links on the loop: signing must not count as waiting."""
    settings = dataclasses.replace(SETTINGS, s3_public_endpoint="localhost:9000")
    with blocking.forbidden():
        url = storage.presigned_url(settings, "results/job/document.pdf")
    assert url.startswith("http") and "X-Amz-Signature=" in url


def test_the_sync_server_runs_the_pipeline_through_in_one_step() -> None:
    """The sync Io never suspends, so its pipeline needs no event loop; one that would suspend is refused."""
    async def no_suspension() -> str:
        return await api._NOW.call(str.upper, "done")

    assert api._run_now(no_suspension()) == "DONE"

    async def suspends() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="suspended"):
        api._run_now(suspends())


def test_on_the_loop_a_call_that_would_wait_goes_to_a_thread_with_the_values_fetched_ahead(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler that needs no I/O runs on the loop's own thread; one that would wait runs again in a worker
    thread, and it still finds the values fetched ahead that the first attempt took."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(loop, "_pool", ThreadPoolExecutor(max_workers=1))  # no settings needed for its size

    seen: list[tuple[str, bytes | None]] = []

    def handler(needs_io: bool) -> str:
        seen.append((threading.current_thread().name, cache.ahead_values().get("ocr:status:j")))
        cache._ahead.get().pop("ocr:status:j", None)  # type: ignore[union-attr]  # taken, as a read takes it
        if needs_io:
            blocking.check("mysql")
        return "answered"

    async def both() -> tuple[str, str]:
        with cache.holding({"ocr:status:j": b"cached"}):
            on_loop = await loop._ON_LOOP.call(handler, False)
        with cache.holding({"ocr:status:j": b"cached"}):
            in_thread = await loop._ON_LOOP.call(handler, True)
        return on_loop, in_thread

    main = threading.current_thread().name
    assert asyncio.run(both()) == ("answered", "answered")
    assert seen[0] == (main, b"cached")  # no I/O: on the loop
    assert seen[1] == (main, b"cached")  # the attempt on the loop, refused at its first wait
    assert seen[2][0] != main and seen[2][1] == b"cached"  # run again in a worker thread, the value given back


def test_an_asgi_request_reads_as_the_flask_request_the_handlers_are_written_for() -> None:
    """Path, query, headers (repeated ones joined) and the peer's address, as the sync server gives them; the body
    is not read (the loop serves reads)."""
    scope = {
        "type": "http", "method": "POST", "path": "/abc", "query_string": b"include=pages&format=text",
        "headers": [(b"x-api-key", b"k"), (b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-for", b"5.6.7.8"),
                    (b"content-type", b"application/json"), (b"content-length", b"2")],
        "client": ("10.0.0.7", 5555), "server": ("127.0.0.1", 5000), "http_version": "1.1", "scheme": "http",
    }
    request = flask.Request(loop._environ(Request(scope)))
    assert (request.method, request.path, request.args.get("include"), request.args.get("format")) == \
        ("POST", "/abc", "pages", "text")
    assert request.headers.get("X-Api-Key") == "k"
    assert request.headers.get("X-Forwarded-For") == "1.2.3.4,5.6.7.8"
    assert (request.remote_addr, request.content_type, request.content_length) == ("10.0.0.7", "application/json", 2)


def test_a_flask_response_goes_out_with_its_status_headers_and_body() -> None:
    response = flask.Response(b'{"a":1}', status=404, mimetype="application/json", headers={"X-Cache": "miss"})
    out = loop._asgi_response(response)
    headers = dict(out.raw_headers)
    assert out.status_code == 404 and out.body == b'{"a":1}'
    assert headers[b"x-cache"] == b"miss" and headers[b"content-length"] == b"7"
    assert headers[b"content-type"] == b"application/json"


@pytest.mark.parametrize(("value", "on_loop"), [("true", True), ("1", True), ("yes", True), ("", False),
                                                ("false", False), ("0", False)])
def test_the_loop_is_used_exactly_when_functions_framework_serves_asgi(
    value: str, on_loop: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FUNCTION_USE_ASGI", value)
    assert loop.serving_on_loop() is on_loop
