"""HTTP to the gateway: the API key, JSON error bodies turned into typed errors, and polite retries.

A 429 is retried after its `Retry-After`, a 503 (a function starting, a backing service blinking) with
exponential backoff; both are answers the service gives before doing anything, so even an upload is safe to
send again. Connection failures are not retried: an unreachable service should be said at once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlencode

import urllib3

from ocr_pipeline_client.errors import ApiError, RateLimited, Unreachable, error_class_for


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # tries while the service answers 503, the first included
    backoff: float = 0.5  # the first wait after a 503; doubles each time
    max_wait: float = 30.0  # no single wait longer, whatever Retry-After says
    # Tries while it answers 429. More than for 503s: a 429 says exactly when to come back, and a folder of
    # uploads sent a few at a time shares one bucket refilling at a token a second.
    rate_limited_attempts: int = 120


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _retry_after(value: str | None) -> float | None:
    # The service sends delta-seconds; an HTTP date (also allowed by RFC 9110) falls back to the backoff.
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_from(response: Response, url: str) -> ApiError:
    """The typed error for an error answer, with the service's code, or `http_<status>` for one without a body
    of ours (a proxy's or the gateway's own)."""
    code, message = f"http_{response.status}", ""
    request_id = response.headers.get("X-Request-Id")
    try:
        body = response.json()
        error = body["error"]
        code, message = str(error["code"]), str(error.get("message") or "")
        request_id = error.get("request_id") or request_id
    except (ValueError, KeyError, TypeError):
        message = response.body.decode("utf-8", "replace").strip()[:200] or f"HTTP {response.status} from {url}"
    cls = error_class_for(response.status)
    if issubclass(cls, RateLimited):
        return cls(message, code, response.status, request_id, _retry_after(response.headers.get("Retry-After")))
    return cls(message, code, response.status, request_id)


class Transport:
    def __init__(self, base_url: str, api_key: str | None, timeout: float = 30.0,
                 retry: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[str, float], None] | None = None, pool_size: int = 8) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        # Told of each wait (the error code and seconds), so a CLI can say why it pauses.
        self.on_retry = on_retry
        self._auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = urllib3.PoolManager(num_pools=4, maxsize=pool_size, retries=False,
                                         timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout))

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        params = {k: v for k, v in (query or {}).items() if v is not None and v != ""}
        return f"{self.base_url}{path}" + (f"?{urlencode(params)}" if params else "")

    def request(self, method: str, path: str, query: Mapping[str, Any] | None = None,
                body: bytes | IO[bytes] | None = None, headers: Mapping[str, str] | None = None) -> Response:
        """One call, retried on 429 and 503 as the policy allows; an error answer raises its typed error."""
        r = self._exchange(method, self.url(path, query), body, headers, stream=False)
        return Response(r.status, r.headers, r.data)

    @contextmanager
    def stream(self, path: str, query: Mapping[str, Any] | None = None) -> Iterator[Stream]:
        """A GET of the API whose body is read as it arrives (a download), retried and typed as `request` is."""
        r = self._exchange("GET", self.url(path, query), None, None, stream=True)
        try:
            yield Stream(r.headers, r)
        finally:
            r.release_conn()

    def _exchange(self, method: str, url: str, body: bytes | IO[bytes] | None, headers: Mapping[str, str] | None,
                  stream: bool) -> urllib3.BaseHTTPResponse:
        start = body.tell() if body is not None and not isinstance(body, bytes) else 0
        unavailable = rate_limited = 0
        while True:
            if body is not None and not isinstance(body, bytes):
                body.seek(start)  # a retried upload sends the file again from its start
            r = self._send(method, url, body, {**self._auth, **(headers or {})}, stream)
            if r.status < 400:
                return r
            try:
                error = error_from(Response(r.status, r.headers, r.data), url)
            finally:
                r.release_conn()
            if r.status == 429:
                rate_limited += 1
                if rate_limited >= self.retry.rate_limited_attempts:
                    raise error
            elif r.status == 503:
                unavailable += 1
                if unavailable >= self.retry.attempts:
                    raise error
            else:
                raise error
            wait = _retry_after(r.headers.get("Retry-After"))
            if wait is None:
                wait = self.retry.backoff * 2 ** max(0, unavailable - 1)
            wait = min(wait, self.retry.max_wait)
            if self.on_retry:
                self.on_retry(error.code, wait)
            self._sleep(wait)

    def _send(self, method: str, url: str, body: bytes | IO[bytes] | None, headers: dict[str, str],
              stream: bool = False) -> urllib3.BaseHTTPResponse:
        try:
            return self._http.request(method, url, body=body, headers=headers, redirect=False,
                                      preload_content=not stream)
        except urllib3.exceptions.HTTPError as e:
            raise Unreachable(f"cannot reach {self.base_url} ({_reason(e)})") from e

    def download(self, url: str, out: IO[bytes]) -> int:
        """GET a signed result link into `out`, streamed; no API key goes with it (the link is its own
        credential, and it points at the object store, not the gateway). Returns the bytes written."""
        try:
            r = self._http.request("GET", url, preload_content=False, redirect=False)
        except urllib3.exceptions.HTTPError as e:
            raise Unreachable(f"cannot reach the result link's host ({_reason(e)})") from e
        try:
            if r.status >= 400:
                raise error_from(Response(r.status, r.headers, r.read()), url)
            return Stream(r.headers, r).copy_to(out)
        finally:
            r.release_conn()


@dataclass
class Stream:
    """An answer whose body is still to be read: its headers now, its bytes as `copy_to` reads them."""

    headers: Mapping[str, str]
    _response: urllib3.BaseHTTPResponse

    def copy_to(self, out: IO[bytes]) -> int:
        """Write the body to `out` in chunks; the bytes written. A connection lost midway is `Unreachable`, so
        a half-read body is never taken for the whole."""
        written = 0
        try:
            for chunk in self._response.stream(1 << 16):
                out.write(chunk)
                written += len(chunk)
        except urllib3.exceptions.HTTPError as e:
            raise Unreachable(f"the download broke off after {written} bytes ({_reason(e)})") from e
        return written


def _reason(error: urllib3.exceptions.HTTPError) -> str:
    # MaxRetryError wraps the real cause; its own text repeats the whole URL and pool details.
    cause = getattr(error, "reason", None) or error
    text = str(cause)
    for known in ("Connection refused", "Name or service not known", "timed out", "No route to host"):
        if known.lower() in text.lower():
            return known.lower()
    return text.split(": ", 1)[-1] if ": " in text else text
