"""The client's HTTP layer: retries on 429 (Retry-After) and 503 (backoff), and error answers as typed errors.

A scripted HTTP server on 127.0.0.1 answers in turn; the sleeps are recorded instead of slept."""

from __future__ import annotations

import io
import json

import pytest

from ocr_pipeline_client import (AuthenticationFailed, BadRequest, Client, RateLimited, RetryPolicy, ServerError,
                                 ServiceUnavailable)
from tests.support import scripted_server


def error(status: int, code: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"error": {"code": code, "message": f"{code} happened", "request_id": "req-1"}}).encode()
    return status, {"Content-Type": "application/json", **(headers or {})}, body


ACCEPTED = (202, {"Content-Type": "application/json"},
            json.dumps({"job_id": "j1", "document_id": "d1", "status": "pending", "status_url": "u"}).encode())


def client_of(url: str, sleeps: list[float], attempts: int = 6) -> Client:
    return Client(url, "ocr_0123456789ab_secret", sleep=sleeps.append,
                  retry=RetryPolicy(attempts=attempts, rate_limited_attempts=attempts))


def test_429_waits_for_retry_after_then_sends_the_same_upload_again() -> None:
    """A 429 is retried after its Retry-After, with the whole file sent again and the key each time."""
    sleeps: list[float] = []
    with scripted_server([error(429, "rate_limited", {"Retry-After": "3"}), ACCEPTED]) as (url, received):
        accepted = client_of(url, sleeps).upload(io.BytesIO(b"%PDF-1.7 body"), filename="a b.pdf", lang="deu")
    assert accepted.job_id == "j1" and sleeps == [3.0]
    assert [r.body for r in received] == [b"%PDF-1.7 body"] * 2
    assert received[1].path == "/function/upload?filename=a+b.pdf&lang=deu"
    assert received[1].headers["Authorization"] == "Bearer ocr_0123456789ab_secret"


def test_503_backs_off_exponentially_then_raises_with_the_code() -> None:
    """503s are retried 0.5, 1, 2 s apart; when attempts run out the typed error carries the service's code."""
    sleeps: list[float] = []
    with scripted_server([error(503, "database_unavailable")]) as (url, received):
        with pytest.raises(ServiceUnavailable) as caught:
            client_of(url, sleeps, attempts=4).status("j1")
    assert sleeps == [0.5, 1.0, 2.0] and len(received) == 4
    assert caught.value.code == "database_unavailable" and caught.value.http_status == 503
    assert caught.value.request_id == "req-1"


def test_retry_after_is_capped() -> None:
    """A Retry-After far in the future is waited for at most max_wait per try."""
    sleeps: list[float] = []
    with scripted_server([error(429, "rate_limited", {"Retry-After": "3600"}), ACCEPTED]) as (url, _):
        Client(url, None, sleep=sleeps.append, retry=RetryPolicy(max_wait=10)).upload(b"x", filename="x.png")
    assert sleeps == [10.0]


def test_rate_limited_after_the_last_try_says_when_to_come_back() -> None:
    sleeps: list[float] = []
    with scripted_server([error(429, "rate_limited", {"Retry-After": "7"})]) as (url, _):
        with pytest.raises(RateLimited) as caught:
            client_of(url, sleeps, attempts=2).list()
    assert caught.value.retry_after == 7.0 and sleeps == [7.0]


@pytest.mark.parametrize(("status", "code", "kind"), [
    (400, "bad_request", BadRequest), (413, "file_too_large", BadRequest), (415, "unsupported_media_type", BadRequest),
    (401, "invalid_api_key", AuthenticationFailed), (500, "internal_error", ServerError),
])
def test_refusals_are_not_retried_and_keep_their_code(status: int, code: str, kind: type[Exception]) -> None:
    """Only 429 and 503 are retried; any other error answer raises at once, as its typed error."""
    sleeps: list[float] = []
    with scripted_server([error(status, code)]) as (url, received):
        with pytest.raises(kind) as caught:
            client_of(url, sleeps).upload(b"x", filename="x.png")
    assert getattr(caught.value, "code") == code and sleeps == [] and len(received) == 1


def test_an_error_without_our_body_gets_an_http_code() -> None:
    """A proxy's or gateway's own error page still becomes a typed error, coded by its status."""
    with scripted_server([(502, {"Content-Type": "text/plain"}, b"upstream went away")]) as (url, _):
        with pytest.raises(ServerError) as caught:
            Client(url, None).list()
    assert caught.value.code == "http_502" and caught.value.message == "upstream went away"


def test_ids_cannot_leave_their_path_segment() -> None:
    """A job id with a slash or question mark stays inside its own segment of the status path."""
    body = json.dumps({"error": {"code": "job_not_found", "message": "no"}}).encode()
    with scripted_server([(404, {}, body)]) as (url, received):
        with pytest.raises(Exception):
            Client(url, None).status("../list?x=1")
    assert received[0].path == "/function/status/..%2Flist%3Fx%3D1"


def test_rate_limits_and_outages_are_counted_apart() -> None:
    """429s do not spend the tries kept for 503s: a service that throttles, then blinks, then accepts, is waited for."""
    sleeps: list[float] = []
    answers = [error(503, "storage_unavailable"), *[error(429, "rate_limited", {"Retry-After": "1"})] * 3, ACCEPTED]
    with scripted_server(answers) as (url, received):
        client = Client(url, None, sleep=sleeps.append, retry=RetryPolicy(attempts=2, rate_limited_attempts=4))
        assert client.upload(b"x", filename="x.png").job_id == "j1"
    assert sleeps == [0.5, 1.0, 1.0, 1.0] and len(received) == 5
