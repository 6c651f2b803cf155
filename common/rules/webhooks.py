"""Completion webhooks: which URLs a job may call back (no SSRF), how events are signed, and their delivery.

When a job that names a `callback_url` ends, ocr-process POSTs one JSON event (`job.completed` or `job.failed`,
never the text) signed with the owner key's webhook secret, and records every attempt on the job, which
`status` shows as `callback: {state, attempts, last_code}`. The receiver's 2xx ends delivery; anything else is
tried again with exponential backoff up to CALLBACK_MAX_ATTEMPTS, then the delivery is `failed`.

Signature (as Stripe's): header `X-OCR-Signature: t=<unix seconds>,v2=<hex HMAC-SHA256 of "<t>." + body>`.
The secret is derived from the API key's secret (rules/webhook_keys.py), so each key has its own, a key's
holder can compute it (the client's ocr_pipeline_client.webhooks), a revoked-and-replaced key gets a new one,
and MySQL keeps it only sealed with the internal token. Keys older than the seal sign with `v1=` (from the
stored hash)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from common import addresses
from common.adapters import cache
from common.adapters.webhook_post import DeliveryFailed, Target, post
from common.adapters.db import ApiKey, Document, Job, session_scope, utcnow
from common.config import Settings
from common.errors import CallbackRefused, PipelineError
from common.logging import get_logger
from common.models import CallbackState, JobStatus
from common.rules import webhook_keys

log = get_logger()

MAX_URL_CHARS = 2048
SIGNATURE_HEADER = "X-OCR-Signature"
# Seconds before the second attempt; doubled for each one after (1, 2, 4, 8 s for the default five).
BACKOFF_SECONDS = 1.0


class Unresolvable(CallbackRefused):
    """The host did not resolve: refused at upload, but only a failed attempt at delivery (DNS may be back)."""




# --- where a callback may go ---------------------------------------------------------------------------------

def check(settings: Settings, url: str) -> Target:
    """The URL's target, resolved once: every address of the host must be public (or allowed by
    CALLBACK_ALLOWED_HOSTS), and the connection will go to the first of them. Raises CallbackRefused naming
    the rule broken (common/addresses.py holds the rules, shared with the gateway's X-Callback-Url)."""
    try:
        parts = addresses.parse_url(url, "callback_url", max_chars=MAX_URL_CHARS)
    except addresses.AddressRefused as e:
        raise CallbackRefused(str(e)) from e
    try:
        infos = socket.getaddrinfo(parts.host, parts.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:  # UnicodeError: a label IDNA cannot encode
        raise Unresolvable(f"the callback host {parts.host!r} does not resolve", detail=str(e)) from e
    resolved = [addresses.parse_address(str(info[4][0])) for info in infos]
    try:
        addresses.vet(parts.host, resolved, addresses.TrustedNetworks.parse(settings.callback_allowed_hosts),
                      "only public addresses are called back, unless CALLBACK_ALLOWED_HOSTS names the host or its "
                      "network")
    except addresses.AddressRefused as e:
        raise CallbackRefused(str(e)) from e
    return Target(scheme=parts.scheme, host=parts.host, port=parts.port, path=parts.path, address=str(resolved[0]))


# --- signing -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SigningSecret:
    """A key's webhook secret and the scheme it belongs to: v2 (sealed, rules/webhook_keys.py) or v1 (older keys)."""

    scheme: str
    secret: bytes


def signing_secret(settings: Settings, key: ApiKey) -> SigningSecret | None:
    """The key's signing secret; None when it is sealed and this process has no internal token to unseal it."""
    if key.webhook_seal is None:
        return SigningSecret("v1", webhook_keys.legacy_secret(key.secret_hash))
    if not settings.internal_token:
        return None
    return SigningSecret("v2", webhook_keys.unseal(settings.internal_token, key.id, key.webhook_seal))


def signature(secret: bytes, timestamp: int, body: bytes, scheme: str = "v2") -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},{scheme}={mac}"


# --- delivery ------------------------------------------------------------------------------------------------

def event(job: Job, document: Document, base_url: str) -> dict[str, object]:
    """What the receiver gets: which job ended and how, and where to read more (never the text itself)."""
    status_url = f"{base_url}/function/status/{job.id}"
    failed = job.status == JobStatus.FAILED
    return {
        "id": str(uuid.uuid4()),
        "type": f"job.{job.status.value}",
        "created_at": utcnow().isoformat(timespec="seconds") + "Z",
        "data": {
            "job_id": job.id,
            "document_id": document.id,
            "filename": document.filename,
            "status": job.status.value,
            "page_count": job.page_count,
            "error": {"code": job.error_code, "message": job.error_message} if failed else None,
            "links": {"status": status_url, **({} if failed else {"text": f"{status_url}?format=text"})},
        },
    }


def _record(settings: Settings, job_id: str, state: CallbackState, attempts: int, last_code: int | None) -> bool:
    """Store one attempt on the job (False if the job is gone); the status cache is told, as for any change."""
    with session_scope(settings) as session:
        job = session.get(Job, job_id)
        if job is None:
            return False
        job.callback_state, job.callback_attempts, job.callback_last_code = state, attempts, last_code
        job.version = job.version + 1
        version = job.version
    cache.mark_changed(settings, job_id, version)
    return True


def _prepare(settings: Settings, job_id: str) -> tuple[str, bytes, SigningSecret, int, str | None] | None:
    """(url, body, secret, attempts so far, the upload's request id) of a delivery still owed, or None: no callback, already settled, the
    job not final or gone (a deleted document's job is called back for nothing)."""
    with session_scope(settings) as session:
        job = session.get(Job, job_id)
        if job is None or not job.callback_url or job.callback_state != CallbackState.PENDING or not job.status.is_final:
            return None
        document = session.get(Document, job.document_id)
        key = session.get(ApiKey, job.owner_id) if job.owner_id else None
        if document is None or key is None:
            return None
        secret = signing_secret(settings, key)
        if secret is None:
            log.error("callback.cannot_sign", job_id=job_id, key_id=key.id,
                      reason="the key's webhook secret is sealed and INTERNAL_TOKEN is not set here")
            return None
        body = json.dumps(event(job, document, settings.public_url or settings.gateway_url)).encode()
        return job.callback_url, body, secret, job.callback_attempts, job.request_id


def deliver(settings: Settings, job_id: str, sleep: Callable[[float], None] = time.sleep) -> str | None:
    """Deliver a finished job's event, retrying with backoff; returns the delivery's final state (None: nothing
    was owed). Every attempt is recorded before the next, so `status` shows progress as it happens."""
    owed = _prepare(settings, job_id)
    if owed is None:
        return None
    url, body, secret, made, request_id = owed
    # The upload's request id on every line and on the webhook itself: one grep follows the document to its receiver.
    trail = {"request_id": request_id} if request_id else {}
    for attempt in range(made + 1, settings.callback_max_attempts + 1):
        code: int | None = None
        try:
            # Checked again now: the address is resolved for this attempt and the connection pinned to it.
            target = check(settings, url)
            timestamp = int(time.time())
            code = post(target, body, {"Content-Type": "application/json", "User-Agent": "ocr-pipeline-webhook/1",
                                       SIGNATURE_HEADER: signature(secret.secret, timestamp, body, secret.scheme),
                                       "X-OCR-Event": json.loads(body)["type"],
                                       **({"X-Request-Id": request_id} if request_id else {})})
        except Unresolvable as e:
            log.warning("callback.unresolvable", job_id=job_id, attempt=attempt, error=str(e), **trail)
        except CallbackRefused as e:
            # A rule broken now (the name points somewhere private since the upload): no retry will pass it.
            log.warning("callback.refused", job_id=job_id, reason=e.message, **trail)
            _record(settings, job_id, CallbackState.FAILED, attempt, None)
            return CallbackState.FAILED
        except DeliveryFailed as e:
            log.warning("callback.unreachable", job_id=job_id, attempt=attempt, error=str(e), **trail)
        delivered = code is not None and 200 <= code < 300
        final = delivered or attempt == settings.callback_max_attempts
        state = CallbackState.DELIVERED if delivered else (CallbackState.FAILED if final else CallbackState.PENDING)
        log.info("callback.attempt", job_id=job_id, attempt=attempt, status_code=code, state=state, **trail)
        if not _record(settings, job_id, state, attempt, code) or final:
            return state
        sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
        if _prepare(settings, job_id) is None:  # deleted while waiting: nothing more is sent
            return None
    return None


def deliver_quietly(settings: Settings, job_id: str) -> None:
    """deliver() for ocr-process: a receiver's or MySQL's trouble is logged, never turned into the job's."""
    try:
        deliver(settings, job_id)
    except PipelineError as e:
        log.warning("callback.not_delivered", job_id=job_id, error_code=e.code, error=str(e))
    except Exception:
        # The job's own outcome is settled and recorded: a fault here must not be taken for the job's.
        log.exception("callback.crashed", job_id=job_id)
