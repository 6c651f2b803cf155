"""Gateway adapter: hands a new job straight to ocr-process through the gateway's async queue."""

from __future__ import annotations

import json

import urllib3

from common.config import Settings
from common.logging import get_logger

log = get_logger()

_http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1.0, read=2.0), retries=False)


def submit_job(settings: Settings, job_id: str, request_id: str | None) -> bool:
    """Queue `{"job_id": ...}` for ocr-process; False (logged) when the gateway is not reachable.

    This is the fast path only: MinIO's notification for the stored object follows in up to 3 s
    (its queue dir is replayed on a 3 s tick) and finds the job already claimed or done, so a
    failure here loses nothing. It goes in the queue's `uploads` lane: a flood of bucket drops (the
    default lane) cannot hold it up.
    """
    return _submit(settings, {"job_id": job_id}, request_id, lane="uploads")


def submit_chunk(settings: Settings, job_id: str, chunk: int, request_id: str | None) -> bool:
    """Queue one chunk of a fanned-out job (rules/chunks.py), in the `chunks` lane: a 1,000-page document's
    chunks take turns with new uploads instead of going before them. False (logged) when not queued."""
    return _submit(settings, {"job_id": job_id, "chunk": chunk}, request_id, lane="chunks")


def _submit(settings: Settings, body: dict[str, object], request_id: str | None, lane: str) -> bool:
    if not settings.gateway_url:
        return False
    headers = {"Content-Type": "application/json", "X-Queue-Lane": lane}
    if settings.internal_token:
        # ocr-process takes only calls that carry the internal token (see common/auth.py).
        headers["Authorization"] = f"Bearer {settings.internal_token}"
    if request_id:
        headers["X-Request-Id"] = request_id
    try:
        reply = _http.request("POST", f"{settings.gateway_url}/async-function/ocr-process",
                              body=json.dumps(body).encode(), headers=headers)
    except urllib3.exceptions.HTTPError as e:
        log.warning("gateway.submit_failed", **body, error=str(e))
        return False
    if reply.status != 202:
        log.warning("gateway.submit_failed", **body, status=reply.status)
        return False
    return True
