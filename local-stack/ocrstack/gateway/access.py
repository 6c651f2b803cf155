"""Who may queue an async call: the function's own key check, made at the door, and what the queue keeps of it.

An async call is stored in Redis before any function looks at it, so a function's key check comes too late to
keep an anonymous body out of memory and Redis. The gateway makes the same check first, with the functions'
own code (common/web/auth.py, common/rules/apikeys.py, the key records cached in Redis), and keeps only who
the caller was: the key id, never the secret. The queued call is made later with the internal token and that
key id, which the function checks again (a key revoked meanwhile is refused).

A function says which check it makes with the stack file annotation `com.ocr-pipeline.access`:
`api-key` (upload, status, list, documents), `internal` (ocr-process: the internal token), or `open`
(default: the function checks nothing, e.g. the ui).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from common.config import Settings
from common.errors import ServiceUnavailable, Unauthenticated
from common.web import auth

ANNOTATION = "com.ocr-pipeline.access"
API_KEY, INTERNAL, OPEN = "api-key", "internal", "open"
KINDS = (API_KEY, INTERNAL, OPEN)
# Headers that carry a secret: never stored with a queued call (the replay sends what call_headers gives).
CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "cookie", auth.VERIFIED_KEY_HEADER.lower()})


@dataclass(frozen=True)
class Caller:
    """A caller as the queue keeps it: how it was verified ("" for not at all) and its key id, no secret."""

    kind: str = ""
    key_id: str = ""

    @property
    def anonymous(self) -> bool:
        return not self.kind


def access_of(annotations: Mapping[str, str]) -> str:
    """The check a function makes, from its stack file annotations; ValueError for an unknown one."""
    kind = annotations.get(ANNOTATION, OPEN).strip() or OPEN
    if kind not in KINDS:
        raise ValueError(f"{ANNOTATION}: {kind!r} is not one of {', '.join(KINDS)}")
    return kind


def check_caller(access: str, headers: Mapping[str, str], settings: Settings, queued: bool = True) -> Caller:
    """The verified caller of a call to a function with this access; raises the function's own 401.

    Blocking (Redis, and MySQL when a key's record is not cached): run it in a thread. A call that is
    `queued` will be made later with the internal token, so the function must have one.
    """
    if access == OPEN or not settings.auth:
        return Caller()
    if queued and not settings.internal_token:
        # Without it no queued call could be made on the caller's behalf without keeping its secret.
        raise ServiceUnavailable("async calls of this function need INTERNAL_TOKEN (or the secret internal-token)")
    if access == INTERNAL:
        if not settings.internal_token or not auth.holds_internal_token(headers, settings):
            raise Unauthenticated("this function is internal: it takes only calls that carry the internal token")
        return Caller(INTERNAL)
    return Caller(API_KEY, auth.authenticate_headers(headers, settings).key_id or "")


def stored_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A call's headers as the queue may keep them at rest: without any credential."""
    return {k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}


def call_headers(caller: Caller, settings: Settings) -> dict[str, str]:
    """What a queued call sends the function in place of the caller's secret."""
    if caller.kind == INTERNAL:
        return {"Authorization": f"Bearer {settings.internal_token}"}
    if caller.kind == API_KEY:
        return {"Authorization": f"Bearer {settings.internal_token}", auth.VERIFIED_KEY_HEADER: caller.key_id}
    return {}
