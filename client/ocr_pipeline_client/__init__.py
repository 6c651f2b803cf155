"""A client of the service's HTTP contract: the `Client` SDK and the `ocr` command built on it.

It stands on docs/openapi.yaml alone: a distribution of its own (ocr-pipeline-client) that needs urllib3 only,
with rich for progress bars as the `progress` extra; nothing of the server comes with it."""

from ocr_pipeline_client.errors import (ApiError, AuthenticationFailed, BadRequest, ClientError, Conflict,
                                        DownloadUnsupported, Forbidden, JobFailed, NotFound, OutputExists,
                                        OutputMissing, RateLimited, ServerError, ServiceUnavailable, Unreachable,
                                        WaitTimeout)
from ocr_pipeline_client.models import (DocumentListItem, DocumentPage, JobError, JobStatus, Outputs, ResultWarning,
                                        UploadAccepted)
from ocr_pipeline_client.sdk import KINDS, Client, Downloaded
from ocr_pipeline_client.transport import RetryPolicy

__all__ = [
    "ApiError", "AuthenticationFailed", "BadRequest", "Client", "ClientError", "Conflict", "DocumentListItem",
    "DocumentPage", "Downloaded", "DownloadUnsupported", "Forbidden", "JobError", "JobFailed", "JobStatus", "KINDS",
    "NotFound", "OutputExists", "OutputMissing", "Outputs", "RateLimited", "ResultWarning", "RetryPolicy",
    "ServerError", "ServiceUnavailable", "Unreachable", "UploadAccepted", "WaitTimeout",
]
