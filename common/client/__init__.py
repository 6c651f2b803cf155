"""A client of the service's HTTP contract: the `Client` SDK and the `ocr` command built on it.

It stands on docs/openapi.yaml alone and imports nothing of the server's layers, so it runs anywhere."""

from common.client.errors import (ApiError, AuthenticationFailed, BadRequest, ClientError, Conflict, Forbidden,
                                  JobFailed, NotFound, OutputExists, OutputMissing, RateLimited, ServerError,
                                  ServiceUnavailable, Unreachable, WaitTimeout)
from common.client.models import (DocumentListItem, DocumentPage, JobError, JobStatus, Outputs, ResultWarning,
                                  UploadAccepted)
from common.client.sdk import Client
from common.client.transport import RetryPolicy

__all__ = [
    "ApiError", "AuthenticationFailed", "BadRequest", "Client", "ClientError", "Conflict", "DocumentListItem",
    "DocumentPage", "Forbidden", "JobError", "JobFailed", "JobStatus", "NotFound", "OutputExists", "OutputMissing",
    "Outputs", "RateLimited", "ResultWarning", "RetryPolicy", "ServerError", "ServiceUnavailable", "UploadAccepted", "Unreachable",
    "WaitTimeout",
]
