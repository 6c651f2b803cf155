"""The HTTP edge shared by every function: request ids, one log line per request, errors as JSON."""

from __future__ import annotations

import dataclasses
import functools
import gc
import re
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar, cast

import flask

from common.config import Settings, get_settings
from common.errors import InvalidRequestId, MethodNotAllowed, PipelineError, Unauthenticated
from common.adapters import cache
from common.logging import bind_context, clear_context, get_logger, setup
from common.models import MAX_REQUEST_ID_CHARS, Principal
from common.web import auth, loop, ratelimit

Handler = Callable[[flask.Request, Settings, Principal], flask.Response]
# The job whose cached status a handler is about to read, if any (see http_function's status_ahead).
JobOfRequest = Callable[[flask.Request], str]

log = get_logger()
T = TypeVar("T")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    response = flask.jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(error: PipelineError, request_id: str | None = None) -> flask.Response:
    """The one place an error becomes the JSON body `{"error": {"code", "message", "request_id"}}`.

    Only `message` reaches the client; an error's `detail` (hosts, object keys, a library's words) is
    for the log line the request id finds.
    """
    body = {**error.to_dict(), **({"request_id": request_id} if request_id else {})}
    return json_response({"error": body}, error.http_status, error.headers)


# An id is stored (jobs.request_id), logged, echoed in a header and kept in object metadata: visible
# ASCII only, and no longer than its column.
_REQUEST_ID = re.compile(rf"[!-~]{{1,{MAX_REQUEST_ID_CHARS}}}")


def request_id_of(request: flask.Request) -> str:
    """The client's X-Request-Id, else the gateway's X-Call-Id, else a new one: every request has an id.

    Raises InvalidRequestId for an id that cannot be kept as it is (check_request_id says why).
    """
    given = request.headers.get("X-Request-Id") or request.headers.get("X-Call-Id")
    if given is None:
        return str(uuid.uuid4())
    if not _REQUEST_ID.fullmatch(given):
        raise InvalidRequestId(f"X-Request-Id (or X-Call-Id) must be 1 to {MAX_REQUEST_ID_CHARS} visible ASCII "
                               f"characters; this one has {len(given)} characters")
    return given


def current_request_id() -> str:
    """The id of the request being handled: the one its log lines, its answer and anything it stores carry."""
    return str(flask.g.request_id)


def require_method(request: flask.Request, *methods: str) -> None:
    if request.method not in methods:
        raise MethodNotAllowed(f"{request.method} is not allowed here; use {' or '.join(methods)}")


def _first_request(settings: Settings) -> None:
    """At a function's first request (its start: settings are read on first use), say loudly what is risky,
    and take what start-up made out of the garbage collector's sight.

    Modules, settings and clients live as long as the process; a full collection walked them all, a
    pause that showed in the tail of short requests (a status hit's p99 at 16 connections: see the README).
    """
    global _warned
    if _warned:
        return
    _warned = True
    gc.freeze()
    if not settings.auth:
        log.warning("auth.disabled", message="AUTH=off: every caller sees and changes every document; "
                    "use this only on a trusted private network")
    host = settings.s3_public_endpoint.rsplit(":", 1)[0]
    if settings.output_links == "presigned" and "." not in host and ":" not in host and host != "localhost":
        # A bare name such as `minio` resolves only inside the functions' network (docker-compose):
        # result links signed for it cannot be opened by users.
        log.warning("storage.public_endpoint_internal", s3_public_endpoint=settings.s3_public_endpoint,
                    message="result links point at a host users cannot reach; set S3_PUBLIC_ENDPOINT")


_warned = False


def _unbuffered(response: flask.Response) -> None:
    """Answer without reading the rest of the body, then close the connection.

    functions-framework reads the whole request after every response that is not streamed (so that an
    early answer does not break the connection): for a body refused as too large that would read it all
    into memory. A streamed response skips that, and `Connection: close` makes gunicorn drop the unread rest.
    """
    body = response.get_data()
    response.response = iter([body])
    response.headers["Connection"] = "close"
    # gunicorn ignores an application's Connection header and, to keep the connection, reads the unread rest
    # of the body before the next request: however large. Once the answer is sent, the socket stops reading,
    # so that read ends at once and gunicorn closes the connection.
    sock = flask.request.environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket):
        response.call_on_close(functools.partial(_stop_reading, sock))


def _on_gunicorn(request: flask.Request) -> bool:
    """Served by gunicorn's threads (the sync server), which would read an unread body on; the event loop's
    server (uvicorn) does not."""
    return isinstance(request.environ.get("gunicorn.socket"), socket.socket)


def _stop_reading(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass  # the client already left


class Io(Protocol):
    """How the request pipeline waits: plain calls on a sync server, awaits on an event loop (web/loop.py)."""

    async def fetch_ahead(self, settings: Settings, key_id: str | None, job_id: str | None) -> dict[str, bytes | None]:
        ...

    async def enforce(self, request: flask.Request, settings: Settings, service: str,
                      principal: Principal | None) -> ratelimit.Decision | None:
        ...

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        ...


class _Now:
    """The sync server's Io: every await is a plain call, so the pipeline never suspends (see _run_now)."""

    async def fetch_ahead(self, settings: Settings, key_id: str | None, job_id: str | None) -> dict[str, bytes | None]:
        return cache.fetch_ahead(settings, key_id, job_id)

    async def enforce(self, request: flask.Request, settings: Settings, service: str,
                      principal: Principal | None) -> ratelimit.Decision | None:
        return ratelimit.enforce(request, settings, service, principal)

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        return function(*args)


_NOW = _Now()


def _run_now(pipeline: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end, without an event loop.

    One pipeline serves both servers: on the sync one nothing it awaits ever suspends, so a single send
    runs it through.
    """
    try:
        pipeline.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    pipeline.close()
    raise RuntimeError("the request pipeline suspended on a sync server")


def http_function(
    service: str, access: str = "key", status_ahead: JobOfRequest | None = None
) -> Callable[[Handler], Callable[..., Any]]:
    """Wrap a handler: settings and logging on first use, request context, who is calling, rate limit,
    errors to JSON, access log.

    `access` is "key" (any valid API key), "admin" (an admin key) or "internal" (the internal token:
    ocr-process, whose callers are MinIO and the gateway's queue, so it is never rate limited either:
    refusing a notification would only make it come back). `status_ahead` names the job whose cached
    status the handler reads: it is fetched from Redis together with the caller's key, one round trip.

    Under functions-framework's ASGI server (FUNCTION_USE_ASGI) the wrapped function is a coroutine on its
    event loop (web/loop.py); otherwise the Flask function functions-framework calls by default.
    """

    def decorate(handler: Handler) -> Callable[..., Any]:
        async def pipeline(request: flask.Request, io: Io) -> flask.Response:
            return await _serve(request, io, service, access, status_ahead, handler)

        if loop.serving_on_loop():
            return functools.wraps(handler)(loop.asgi_handler(pipeline))

        @functools.wraps(handler)
        def handle(request: flask.Request) -> flask.Response:
            return _run_now(pipeline(request, _NOW))

        return handle

    return decorate



@dataclasses.dataclass
class _Caller:
    """Who called and what the rate limit decided, as far as the request got: for the answer's headers and the
    access log, whether the handler answered or an error did."""

    principal: Principal | None = None
    decision: ratelimit.Decision | None = None


async def _serve(request: flask.Request, io: Io, service: str, access: str, status_ahead: JobOfRequest | None,
                 handler: Handler) -> flask.Response:
    started = time.monotonic()
    clear_context()
    bad_id: InvalidRequestId | None = None
    try:
        request_id = request_id_of(request)
    except InvalidRequestId as e:
        # Answered (below, as a 400) under an id of our own, so even this answer can be traced.
        request_id, bad_id = str(uuid.uuid4()), e
    # Bound once here, so a handler that stores the id stores the one the log lines carry.
    flask.g.request_id = request_id
    caller = _Caller()
    try:
        settings = get_settings()
        setup(service, settings.log_level)
        _first_request(settings)
        bind_context(request_id=request_id)
        if bad_id is not None:
            raise bad_id
        response = await _answer(request, io, settings, service, access, status_ahead, handler, caller)
    except PipelineError as e:
        setup(service)
        if e.http_status >= 500:
            log.error("request.failed", error_code=e.code, error=e.message, detail=e.detail)
        response = error_response(e, request_id)
    except Exception:
        setup(service)
        log.exception("request.crashed")
        response = error_response(PipelineError("internal error; see the function's log"), request_id)
    return _sent(request, response, request_id, caller, started)


async def _answer(request: flask.Request, io: Io, settings: Settings, service: str, access: str,
                  status_ahead: JobOfRequest | None, handler: Handler, caller: _Caller) -> flask.Response:
    """The handler's answer once the caller is known and allowed: by the internal token, or by an API key (its
    record and the status the handler will read fetched ahead in one Redis round trip) and the rate limit."""
    if access == "internal":
        caller.principal = auth.authenticate_internal(request, settings)
        return await io.call(handler, request, settings, caller.principal)
    job_id = status_ahead(request) if status_ahead and settings.status_cache else None
    key_id = auth.claimed_key_id(request) if job_id and settings.auth else None
    with cache.holding(await io.fetch_ahead(settings, key_id, job_id)):
        try:
            caller.principal = await io.call(auth.authenticate, request, settings)
        except Unauthenticated:
            # Failed attempts spend the address's tokens, so guessing costs like any request.
            caller.decision = await io.enforce(request, settings, service, None)
            raise
        if access == "admin":
            auth.require_admin(caller.principal)
        caller.decision = await io.enforce(request, settings, service, caller.principal)
        return await io.call(handler, request, settings, caller.principal)


def _sent(request: flask.Request, response: flask.Response, request_id: str, caller: _Caller,
          started: float) -> flask.Response:
    """The answer with its rate-limit and request-id headers, its connection ended where a refusal left a body
    unread, and the access log line."""
    if caller.decision is not None:
        response.headers.update(caller.decision.headers())
    with_body = bool(request.content_length or request.headers.get("Transfer-Encoding"))
    if response.status_code == 413 or (response.status_code >= 400 and with_body and _on_gunicorn(request)):
        # A refusal may leave the body unread (too large, no key, bad parameters): not read on, the connection ends.
        _unbuffered(response)
    response.headers["X-Request-Id"] = request_id
    log.info(
        "http.request",
        method=request.method,
        path=request.path,
        status=response.status_code,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
        request_id=request_id,
        client=request.headers.get("X-Forwarded-For") or request.remote_addr,
        key_id=caller.principal.key_id if caller.principal else None,
    )
    return response
