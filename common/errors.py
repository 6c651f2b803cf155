"""Error types: each kind of failure has a stable code and an HTTP status, so callers raise meaning."""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error the pipeline reports to a user or records on a job."""

    code = "internal_error"
    http_status = 500
    # Whether a later attempt may succeed (the queue retries these); bad input never is.
    retryable = False

    def __init__(self, message: str, headers: dict[str, str] | None = None, detail: str | None = None) -> None:
        # str() of the error (tracebacks, the CLI, local-stack) keeps the detail; clients get `message` alone.
        super().__init__(f"{message} ({detail})" if detail else message)
        self.message = message
        # Extra response headers the edge must send with this error (e.g. Retry-After).
        self.headers = headers or {}
        # What only the logs may carry: hosts, ports, object keys, a library's own words.
        self.detail = detail

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class ConfigError(PipelineError):
    code = "config_invalid"


class BadRequest(PipelineError):
    code = "bad_request"
    http_status = 400


def unknown_parameters(unknown: list[str], accepted: list[str], kind: str = "query parameter") -> BadRequest:
    """A typo such as `language=deu` must not silently fall back to a default: name it and the choices."""
    return BadRequest(f"unknown {kind}{'s' if len(unknown) > 1 else ''} {', '.join(sorted(unknown))}; "
                      f"accepted: {', '.join(sorted(accepted))}")


class MissingFile(BadRequest):
    code = "missing_file"


class EmptyFile(BadRequest):
    code = "empty_file"


class InvalidLanguage(BadRequest):
    code = "invalid_language"


class InvalidFilename(BadRequest):
    """A name longer than the schema and the object store hold: refused, not cut, so the client knows."""

    code = "invalid_filename"


class InvalidRequestId(BadRequest):
    """An X-Request-Id (or X-Call-Id) that could not be stored, logged and echoed as it is."""

    code = "invalid_request_id"


class CallbackRefused(BadRequest):
    """A callback_url the completion webhook may not call (scheme, credentials, a private address); the message
    names the rule."""

    code = "callback_refused"


class SearchTooDeep(BadRequest):
    """An offset page of a `q` search past MAX_SEARCH_DEPTH: no cheap way reaches it for a common word, while
    the cursor does at any depth; a code of its own lets a client switch to `next_cursor` without parsing text."""

    code = "search_too_deep"


class CredentialsInUrl(BadRequest):
    """Keys in URLs end up in access logs, proxies and browser history, so they are refused outright."""

    code = "credentials_in_url"


# Bearer, as RFC 6750: a client learns how to authenticate from the 401 itself.
_CHALLENGE = 'Bearer realm="ocr-pipeline"'


class Unauthenticated(PipelineError):
    code = "unauthenticated"
    http_status = 401

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": _CHALLENGE})


class InvalidApiKey(Unauthenticated):
    code = "invalid_api_key"

    def __init__(self, message: str) -> None:
        PipelineError.__init__(self, message, headers={"WWW-Authenticate": _CHALLENGE + ', error="invalid_token"'})


class Forbidden(PipelineError):
    code = "forbidden"
    http_status = 403


class FileTooLarge(PipelineError):
    code = "file_too_large"
    http_status = 413


class BodyTooSlow(PipelineError):
    """Refused at the gateway: a request body that stalled, or came in under its minimum rate."""

    code = "body_too_slow"
    http_status = 408


class UnsupportedMediaType(PipelineError):
    code = "unsupported_media_type"
    http_status = 415


class NotFound(PipelineError):
    code = "not_found"
    http_status = 404


class JobNotFound(NotFound):
    code = "job_not_found"


class DocumentNotFound(NotFound):
    code = "document_not_found"


class DocumentBusy(PipelineError):
    """A re-process while the document's newest job is still pending or processing."""

    code = "document_busy"
    http_status = 409


class InvalidIdempotencyKey(BadRequest):
    code = "invalid_idempotency_key"


class IdempotencyKeyReused(PipelineError):
    """The key was first used with another body: replaying that answer for this body would be a lie."""

    code = "idempotency_key_reused"
    http_status = 409


class IdempotencyKeyInUse(PipelineError):
    """The first request with this key is still running; its answer is not known yet."""

    code = "idempotency_key_in_use"
    http_status = 409
    retryable = True


class DropOwnerUnknown(PipelineError):
    """A dropped object whose folder names no live key, with no INBOX_OWNER to fall back on."""

    code = "drop_owner_unknown"
    http_status = 422


class JobNotCompleted(PipelineError):
    code = "job_not_completed"
    http_status = 409


class OutputMissing(NotFound):
    """A download of an output the job did not make (no searchable PDF for it, say)."""

    code = "output_missing"


class PageNotFound(NotFound):
    """A page number the job does not have (a preview of page 0, or past its last page)."""

    code = "page_not_found"


class MethodNotAllowed(PipelineError):
    code = "method_not_allowed"
    http_status = 405


class RateLimited(PipelineError):
    code = "rate_limited"
    http_status = 429


class JobInProgress(PipelineError):
    """Another worker holds an unexpired lease; answering non-2xx makes the queue try again later."""

    code = "job_in_progress"
    http_status = 409
    retryable = True


class ServiceUnavailable(PipelineError):
    """A backing service (MySQL, MinIO, Redis) failed; the request may succeed later."""

    code = "service_unavailable"
    http_status = 503
    retryable = True


class StorageUnavailable(ServiceUnavailable):
    code = "storage_unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"


class CacheUnavailable(ServiceUnavailable):
    code = "cache_unavailable"


class QueueUnavailable(ServiceUnavailable):
    code = "queue_unavailable"


class ObjectMissing(PipelineError):
    """The notified object is gone (deleted before processing): the job fails, nothing to retry."""

    code = "object_missing"
    http_status = 404


class InvalidEvent(BadRequest):
    code = "invalid_event"


# --- OCR failures: recorded on the job; the worker survives and takes the next job. ---


class OcrError(PipelineError):
    code = "ocr_failed"
    http_status = 422


class CorruptDocument(OcrError):
    code = "corrupt_document"


class PdfEncrypted(OcrError):
    code = "pdf_encrypted"


class TooManyPages(OcrError):
    code = "too_many_pages"


class ImageTooLarge(OcrError):
    code = "image_too_large"


class OcrTimeout(OcrError):
    code = "ocr_timeout"


class AssemblyFailed(OcrError):
    """Every page was read, but the searchable PDF could not be put together from them."""

    code = "assembly_failed"
