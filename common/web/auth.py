"""Who may call: API keys on the public functions, a shared internal token on ocr-process; checked here only."""

from __future__ import annotations

import hmac

import flask

from common.config import Settings
from common.errors import ConfigError, CredentialsInUrl, Forbidden, Unauthenticated
from common.models import TRUSTED, Principal
from common.rules import apikeys

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
    authorization = request.headers.get("Authorization", "").strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthenticated(f"the Authorization scheme {scheme[:20]!r} is not accepted; use Bearer <key>")
        if value.strip():
            return value.strip()
    api_key = request.headers.get("X-Api-Key", "").strip()
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
    if not settings.auth:
        return TRUSTED
    token = presented_key(request)
    if token is None:
        raise Unauthenticated("an API key is required: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'")
    return apikeys.verify(settings, token)


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
    authorization = request.headers.get("Authorization", "")
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), settings.internal_token.encode()):
        raise Unauthenticated("ocr-process is internal: it takes only calls that carry the internal token")
    return TRUSTED

