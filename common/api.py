"""The HTTP edge shared by every function: request ids, one log line per request, errors as JSON."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from typing import Any

import flask

from common import ratelimit
from common.config import Settings, get_settings
from common.errors import MethodNotAllowed, PipelineError
from common.logging import bind_context, clear_context, get_logger, setup

Handler = Callable[[flask.Request, Settings], flask.Response]

log = get_logger()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    response = flask.jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(error: PipelineError) -> flask.Response:
    """The one place an error becomes the JSON body `{"error": {"code", "message"}}`."""
    return json_response({"error": error.to_dict()}, error.http_status, error.headers)


def request_id_of(request: flask.Request) -> str:
    return request.headers.get("X-Request-Id") or request.headers.get("X-Call-Id") or str(uuid.uuid4())


def require_method(request: flask.Request, *methods: str) -> None:
    if request.method not in methods:
        raise MethodNotAllowed(f"{request.method} is not allowed here; use {' or '.join(methods)}")


def http_function(
    service: str, rate_limited: bool = True
) -> Callable[[Handler], Callable[[flask.Request], flask.Response]]:
    """Wrap a handler: settings and logging on first use, request context, rate limit, errors to JSON, access log.

    `rate_limited=False` is for event receivers (ocr-process): refusing a notification would only
    make MinIO or the queue deliver it again.
    """

    def decorate(handler: Handler) -> Callable[[flask.Request], flask.Response]:
        @functools.wraps(handler)
        def handle(request: flask.Request) -> flask.Response:
            started = time.monotonic()
            clear_context()
            request_id = request_id_of(request)
            decision: ratelimit.Decision | None = None
            try:
                settings = get_settings()
                setup(service, settings.log_level)
                bind_context(request_id=request_id)
                if rate_limited:
                    decision = ratelimit.enforce(request, settings, service)
                response = handler(request, settings)
            except PipelineError as e:
                setup(service)
                if e.http_status >= 500:
                    log.error("request.failed", error_code=e.code, error=e.message)
                response = error_response(e)
            except Exception:
                setup(service)
                log.exception("request.crashed")
                response = error_response(PipelineError("internal error; see the function's log"))
            if decision is not None:
                response.headers.update(decision.headers())
            status = response.status_code
            response.headers["X-Request-Id"] = request_id
            log.info(
                "http.request",
                method=request.method,
                path=request.path,
                status=status,
                duration_ms=round((time.monotonic() - started) * 1000, 1),
                request_id=request_id,
                client=request.headers.get("X-Forwarded-For") or request.remote_addr,
            )
            return response

        return handle

    return decorate
