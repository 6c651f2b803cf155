"""A function served on an event loop: functions-framework's ASGI server (uvicorn), for the status read.

A status cache hit is a key check and a cached answer, both fetched from Redis in one round trip: on the
sync server each process waits out that round trip with nothing else to do, and the server's own
per-request cost (a connection per request, Flask's dispatch) is larger than the read. Here the Redis
round trips are awaited, so one process serves other connections meanwhile, and the pipeline and handler
stay the ones the sync server runs (web/api.py): a handler call runs on the loop while it needs no I/O,
and in a worker thread from the first call that would wait (common/blocking.py).

Set FUNCTION_USE_ASGI=true for the function (stack.yml does for status); functions-framework then serves
it with uvicorn under gunicorn, WORKERS processes of one event loop each. One difference from the sync
server: uvicorn takes the peer's address from X-Forwarded-For when the peer is in FORWARDED_ALLOW_IPS
(127.0.0.1 by default: the watchdog in front), and the rate limit's walk through TRUSTED_PROXIES goes on from
there; with both at their defaults the client address comes out the same.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import functools
import io
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import flask
from starlette.requests import Request
from starlette.responses import Response

from common import blocking
from common.adapters import cache
from common.config import Settings, get_settings
from common.models import Principal
from common.web import ratelimit

T = TypeVar("T")
Pipeline = Callable[[flask.Request, Any], Awaitable[flask.Response]]

# Flask's app context: flask.g and jsonify work as under the Flask server. No route of it is used.
_APP = flask.Flask("ocr-function-on-loop")

_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})


def serving_on_loop() -> bool:
    """Whether functions-framework serves this process with its ASGI server (the flag it reads itself)."""
    return os.environ.get("FUNCTION_USE_ASGI", "").strip().lower() in _TRUE


class _OnLoop:
    """The loop's Io (web/api.py): Redis awaited; a handler on the loop until it would wait, then in a thread."""

    async def fetch_ahead(self, settings: Settings, key_id: str | None, job_id: str | None) -> dict[str, bytes | None]:
        return await cache.fetch_ahead_async(settings, key_id, job_id)

    async def enforce(self, request: flask.Request, settings: Settings, service: str,
                      principal: Principal | None) -> ratelimit.Decision | None:
        return await ratelimit.enforce_async(request, settings, service, principal)

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        # Values fetched ahead that the attempt took are given back: it did no I/O, so nothing it read changed.
        kept = cache.ahead_values()
        try:
            with blocking.forbidden():
                return function(*args)
        except blocking.WouldBlock:
            context = contextvars.copy_context()  # the request's: Flask's app context, the values fetched ahead
            return await asyncio.get_running_loop().run_in_executor(
                _threads(), functools.partial(context.run, _holding, kept, function, *args))


_pool: ThreadPoolExecutor | None = None


def _threads() -> ThreadPoolExecutor:
    """The threads for calls that wait (LOOP_THREADS of them): asyncio's default pool has 6 on 2 cores, and the
    status MySQL path's p99 was 5 times that of 2 to 4 threads, all queueing for the interpreter lock."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=get_settings().loop_threads, thread_name_prefix="waits")
    return _pool


def _holding(values: dict[str, bytes | None], function: Callable[..., T], *args: Any) -> T:
    with cache.holding(values):
        return function(*args)


_ON_LOOP = _OnLoop()


def _environ(request: Request) -> dict[str, Any]:
    """The WSGI environ of an ASGI request, so the handlers read it as the flask.Request they are written for.

    Without its body: the loop serves reads (status answers GET alone). A body is never read into memory here,
    whatever its size; a function that takes bodies (upload) stays on the sync server, which streams them.
    """
    scope = request.scope
    server = scope.get("server") or ("127.0.0.1", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": scope["path"],
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": (scope.get("client") or ("", 0))[0],
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + name
        # Repeated headers join with commas, as WSGI servers pass them.
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def _asgi_response(response: flask.Response) -> Response:
    body = response.get_data()
    out = Response(body, status_code=response.status_code)
    out.raw_headers = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                       for name, value in response.headers.items() if name.lower() != "content-length"]
    out.raw_headers.append((b"content-length", str(len(body)).encode()))
    return out


_PR_SET_PDEATHSIG = 1


def _end_with_the_master() -> None:
    """In each worker process gunicorn forks: SIGTERM when the master dies.

    gunicorn's own workers notice a dead master and exit; uvicorn's do not, and a master killed outright (a
    local gateway's functions die with it) left its workers running, holding the port and their memory.
    """
    master = os.getppid()
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != master:  # the master died before the signal was armed
        os._exit(1)


_armed = False


def asgi_handler(pipeline: Pipeline) -> Callable[[Request], Awaitable[Response]]:
    """The coroutine functions-framework's ASGI server calls with each request.

    functions-framework loads the handler in the master process, before gunicorn forks the workers: this is
    where each worker gets to end with the master.
    """
    global _armed
    if not _armed:
        os.register_at_fork(after_in_child=_end_with_the_master)
        _armed = True

    async def handle(request: Request) -> Response:
        with _APP.app_context():
            response = await pipeline(flask.Request(_environ(request)), _ON_LOOP)
        return _asgi_response(response)

    return handle
