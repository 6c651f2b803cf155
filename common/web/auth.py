"""Who may call: API keys on the public functions, a shared internal token on ocr-process; checked here only."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

import flask
from werkzeug.datastructures import Headers

from common.config import Settings
from common.errors import ConfigError, CredentialsInUrl, Forbidden, Unauthenticated
from common.models import TRUSTED, Principal
from common.rules import apikeys

# The key id of a caller the gateway verified when it queued an async call: the queue keeps no secret at
# rest, so the call is made later with the internal token and this id. Honoured only beside the internal
# token (which no client holds), and the key is checked again (revoked since: refused).
VERIFIED_KEY_HEADER = "X-Verified-Key-Id"

# The gateway's word for the X-Forwarded-For it wrote: an HMAC of that header under the internal token. A local
# user who reaches a function's private port directly can write any X-Forwarded-For, but not this.
FORWARDED_PROOF_HEADER = "X-Forwarded-Proof"

# A request's headers: a Flask request's, or any mapping (the local gateway's aiohttp request).
HeaderMap = Mapping[str, str] | Headers

# Query parameter names under which clients commonly put credentials.
_CREDENTIAL_PARAMETERS = frozenset({"api_key", "apikey", "key", "token", "access_token", "x-api-key"})


def _refuse_credentials_in_url(request: flask.Request) -> None:
    named = sorted(name for name in request.args if name.lower() in _CREDENTIAL_PARAMETERS)
    smuggled = any(apikeys.looks_like_token(value) for value in request.args.values())
    if named or smuggled:
        what = f"parameter {', '.join(named)}" if named else "a query parameter holding an API key"
        raise CredentialsInUrl(
            f"credentials are not accepted in the URL ({what}): URLs end up in logs; "
            "send the key as 'Authorization: Bearer <key>' or 'X-Api-Key: <key>', and revoke the one that was sent"
        )


def presented_key(request: flask.Request) -> str | None:
    """The key from `Authorization: Bearer` or `X-Api-Key`; None when neither header carries one."""
    return key_in_headers(request.headers)


def key_in_headers(headers: HeaderMap) -> str | None:
    """presented_key over any mapping of headers (the local gateway checks async calls with it)."""
    authorization = headers.get("Authorization", "").strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthenticated(f"the Authorization scheme {scheme[:20]!r} is not accepted; use Bearer <key>")
        if value.strip():
            return value.strip()
    api_key = headers.get("X-Api-Key", "").strip()
    return api_key or None


def claimed_key_id(request: flask.Request) -> str | None:
    """The key id the request's key names, not yet verified (to fetch its record ahead); None if there is none."""
    try:
        token = presented_key(request)
    except Unauthenticated:
        return None  # authenticate() says why
    return apikeys.key_id_of(token) if token else None


def authenticate(request: flask.Request, settings: Settings) -> Principal:
    """The caller behind an API key; every failure is a 401 with a challenge, never a hint at other keys."""
    _refuse_credentials_in_url(request)
    return authenticate_headers(request.headers, settings)


def authenticate_headers(headers: HeaderMap, settings: Settings) -> Principal:
    """authenticate() after the URL check: the caller its headers name (the gateway's async check too)."""
    if not settings.auth:
        return TRUSTED
    token = key_in_headers(headers)
    if token is None:
        raise Unauthenticated("an API key is required: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'")
    verified = headers.get(VERIFIED_KEY_HEADER)
    if verified is not None and holds_internal_token(headers, settings):
        return apikeys.principal_of(settings, verified)
    return apikeys.verify(settings, token)


def holds_internal_token(headers: HeaderMap, settings: Settings) -> bool:
    """Whether `Authorization: Bearer` carries the internal token (compared in constant time)."""
    if not settings.internal_token:
        return False
    scheme, _, value = headers.get("Authorization", "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), settings.internal_token.encode())


def forwarded_proof(internal_token: str, forwarded_for: str) -> str:
    """What the gateway sends beside the X-Forwarded-For it wrote (FORWARDED_PROOF_HEADER)."""
    return hmac.new(internal_token.encode(), b"forwarded-for:" + forwarded_for.encode(), "sha256").hexdigest()


def forwarded_for_vouched(headers: HeaderMap, settings: Settings) -> bool:
    """Whether X-Forwarded-For comes with the gateway's proof; with no internal token set there is nothing to
    prove with, and the trusted proxy's address alone counts (as behind the OpenFaaS gateway)."""
    if not settings.internal_token:
        return True
    given = headers.get(FORWARDED_PROOF_HEADER) or ""
    expected = forwarded_proof(settings.internal_token, headers.get("X-Forwarded-For") or "")
    return given.isascii() and hmac.compare_digest(given.encode(), expected.encode())


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("this needs an admin key")


def authenticate_internal(request: flask.Request, settings: Settings) -> Principal:
    """Only MinIO's webhook target and our own hand-offs know the internal token; anyone else gets 401.

    MinIO sends `Authorization: Bearer <token>` when its webhook target has an auth token
    (MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_<ID>; a token without a scheme gets `Bearer ` put in front).
    """
    if not settings.auth:
        return TRUSTED
    if not settings.internal_token:
        raise ConfigError("INTERNAL_TOKEN (or the secret internal-token) must be set for ocr-process while AUTH is on")
    if not holds_internal_token(request.headers, settings):
        raise Unauthenticated("ocr-process is internal: it takes only calls that carry the internal token")
    return TRUSTED

