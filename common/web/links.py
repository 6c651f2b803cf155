"""The address clients reach the gateway at, for the absolute links an answer carries."""

from __future__ import annotations

import flask

from common.config import Settings


def public_base(request: flask.Request, settings: Settings) -> str:
    """PUBLIC_URL when set; else the scheme and host the gateway was called with, as it forwards them
    (X-Forwarded-Proto, X-Forwarded-Host: the local gateway sets both and drops a client's own unless it came
    through a trusted proxy); else the host the function was called at."""
    if settings.public_url:
        return settings.public_url
    host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
    if not host:
        return request.host_url.rstrip("/")
    scheme = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return f"{scheme if scheme in ('http', 'https') else request.scheme}://{host}"
