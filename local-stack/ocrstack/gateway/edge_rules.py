"""Pure rules of the gateway's edge: which paths it refuses, the codes of its HTTP errors, a call's sub-path."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote_to_bytes

from common.models import MAX_REQUEST_ID_CHARS

# Stable codes of the answers aiohttp itself gives (no route, wrong method, ...), as the functions name theirs.
_HTTP_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 408: "body_too_slow", 411: "length_required",
               413: "payload_too_large", 414: "uri_too_long", 415: "unsupported_media_type",
               431: "header_too_large", 503: "service_unavailable"}
# What the functions accept as a request id (common/web/api.py): visible ASCII, as long as its column.
_CALL_ID = re.compile(rf"[!-~]{{1,{MAX_REQUEST_ID_CHARS}}}")


def http_code(status: int) -> str:
    return _HTTP_CODES.get(status, "bad_request" if status < 500 else "internal_error")


def path_refusal(raw_path: str) -> str | None:
    """Why a request's path is refused (its percent-escapes are not UTF-8), or None: no function could read it."""
    path = raw_path.partition("?")[0]
    try:
        unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        return "the path is not UTF-8 once its %-escapes are decoded"
    return None


def raw_tail(raw_path: str) -> str:
    """`/function/<name>/a/b?x=1` -> `/a/b?x=1`, as the client encoded it (same for /async-function)."""
    path, mark, query = raw_path.partition("?")
    rest = path.split("/", 3)[3] if path.count("/") >= 3 else ""
    return "/" + rest + (mark + query if query else "")


def given_call_id(headers: Mapping[str, str]) -> str | None:
    """The id a client gave its call: X-Call-Id, else X-Request-Id (what the functions and the SDK send), so
    the gateway's lines, the queue's and the functions' carry one id a grep follows."""
    return headers.get("X-Call-Id") or headers.get("X-Request-Id") or None


def call_id_refusal(call_id: str | None) -> str | None:
    """Why a client's X-Call-Id is refused (it is stored with the call and logged), or None."""
    if call_id is None or _CALL_ID.fullmatch(call_id):
        return None
    return f"X-Call-Id must be 1 to {MAX_REQUEST_ID_CHARS} visible ASCII characters"
