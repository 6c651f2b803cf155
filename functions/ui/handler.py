"""ui: the web page to drop documents, watch them being read and search them; static files on the public API."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

import flask

from common.errors import MethodNotAllowed, NotFound, PipelineError

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# Self only: the page loads its own script, style and icon and calls its own gateway. Nothing inline runs,
# so text a document puts on the page can never become code; no frames, plugins or foreign forms. Images may
# also be blob: URLs: a page's preview is requested with the key (an <img> cannot send it) and shown from memory.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


class File(NamedTuple):
    body: bytes
    content_type: str
    etag: str


def _file(path: Path) -> File:
    body = path.read_bytes()
    return File(body, TYPES[path.suffix], hashlib.sha256(body).hexdigest()[:16])


# Read once at start, keyed by the path under /function/ui/: a request path is only ever looked up here,
# never joined to a folder, so no path (`..`, encoded or not) can reach another file.
FILES = {f"/{p.name}": _file(p) for p in sorted(STATIC.iterdir()) if p.suffix in TYPES}
FILES["/"] = FILES["/index.html"]


def handle(request: flask.Request) -> flask.Response:
    try:
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(f"{request.method} is not allowed here; use GET")
        found = FILES.get(request.path)
        if found is None:
            raise NotFound("no such file; the page is at /function/ui/")
        response = flask.Response(found.body, content_type=found.content_type)
        # Revalidated on every load (cheap: 304 by ETag), so a redeployed page is seen at once.
        response.headers["Cache-Control"] = "no-cache"
        response.set_etag(found.etag)
        response.make_conditional(request)
    except PipelineError as e:
        # The API's error shape. Not common.web.api's wrapper: the page needs no settings, key or Redis.
        response = flask.jsonify({"error": e.to_dict()})
        response.status_code = e.http_status
        if isinstance(e, MethodNotAllowed):
            response.headers["Allow"] = "GET, HEAD"
    response.headers.update(HEADERS)
    return response
