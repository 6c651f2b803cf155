"""Errors the client raises: each carries the service's stable error `code`, so callers branch on meaning."""

from __future__ import annotations

import os


class ClientError(Exception):
    """Base of every error of the client; `code` is the service's error code, or the client's own for failures
    that never reached the service (`unreachable`, `wait_timeout`)."""

    code = "client_error"

    def __init__(self, message: str, code: str | None = None, http_status: int | None = None,
                 request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.http_status = http_status
        # The id the service logged the request under: what an operator asks for.
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class Unreachable(ClientError):
    """No HTTP answer at all: refused connection, unknown host, timeout."""

    code = "unreachable"


class ApiError(ClientError):
    """The service answered with an error body `{"error": {"code", "message"}}` (or a non-JSON error)."""

    code = "api_error"


class BadRequest(ApiError):
    """400, 413, 415: the request or the file was refused; sending it again changes nothing."""


class AuthenticationFailed(ApiError):
    """401: no key, or a malformed, unknown or revoked one."""


class Forbidden(ApiError):
    """403."""


class NotFound(ApiError):
    """404: no such job or document, or one of another key (the service answers both alike)."""


class Conflict(ApiError):
    """409: e.g. `job_not_completed` for the text of an unfinished job, `document_busy`."""


class RateLimited(ApiError):
    """429 after the client's own retries ran out; `retry_after` is the service's last word in seconds."""

    def __init__(self, message: str, code: str | None = None, http_status: int | None = None,
                 request_id: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code, http_status, request_id)
        self.retry_after = retry_after


class ServiceUnavailable(ApiError):
    """503 after the client's retries: a backing service (MySQL, MinIO, Redis) or the function is down."""


class ServerError(ApiError):
    """Any other 5xx."""


class JobFailed(ClientError):
    """A job ended `failed`; `code` is the job's error code (`pdf_encrypted`, `ocr_timeout`, ...)."""

    def __init__(self, job_id: str, code: str, message: str) -> None:
        super().__init__(message, code)
        self.job_id = job_id


class WaitTimeout(ClientError):
    """`wait` gave up before the job finished; the job itself goes on."""

    code = "wait_timeout"


class OutputMissing(ClientError):
    """A completed job's answer has no link for the asked output (or the job is not completed)."""

    code = "output_missing"


class DownloadUnsupported(ClientError):
    """The service cannot give what was asked in any way this client knows (the original, from a service older
    than the download route)."""

    code = "download_unsupported"


class OutputExists(ClientError):
    """A result would replace a file that is already there (the command's --force allows it); `path` names it."""

    code = "output_exists"

    def __init__(self, path: str | os.PathLike[str], message: str) -> None:
        super().__init__(message)
        self.path = os.fspath(path)


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest, 401: AuthenticationFailed, 403: Forbidden, 404: NotFound, 409: Conflict, 413: BadRequest,
    415: BadRequest, 429: RateLimited, 503: ServiceUnavailable,
}


def error_class_for(http_status: int) -> type[ApiError]:
    if http_status in _BY_STATUS:
        return _BY_STATUS[http_status]
    return ServerError if http_status >= 500 else ApiError
