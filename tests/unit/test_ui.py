"""The ui function: the web page's files with their types and a strict CSP, anything else a JSON 404."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import functions_framework
import pytest

REPO = Path(__file__).resolve().parents[2]
UI = REPO / "functions" / "ui"


@pytest.fixture(scope="module")
def client() -> Any:
    """The handler as functions-framework serves it (the paths are those under /function/ui/)."""
    app = functions_framework.create_app("handle", str(UI / "handler.py"))
    return app.test_client()


@pytest.mark.parametrize(("path", "content_type", "starts"), [
    ("/", "text/html; charset=utf-8", b"<!doctype html>"),
    ("/index.html", "text/html; charset=utf-8", b"<!doctype html>"),
    ("/app.js", "text/javascript; charset=utf-8", b"//"),
    ("/style.css", "text/css; charset=utf-8", b"/*"),
    ("/favicon.svg", "image/svg+xml", b"<svg"),
])
def test_each_file_is_served_with_its_content_type(client: Any, path: str, content_type: str, starts: bytes) -> None:
    """The page, its script, its style and its icon answer 200 with their own type and bytes."""
    reply = client.get(path)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == content_type
    assert reply.data.startswith(starts)
    assert reply.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/", "/app.js", "/nothing-here", "/../handler.py"])
def test_every_answer_carries_a_self_only_content_security_policy(client: Any, path: str) -> None:
    """Files and errors alike: scripts, styles, images and calls from the page's own origin only (images also
    from blob: URLs the page made), nothing inline."""
    policy = client.get(path).headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    for name in ("script-src", "style-src", "connect-src"):
        assert directives[name] == "'self'", name
    # Page previews are requested with the key and shown from blob: URLs of the page's own making.
    assert directives["img-src"] == "'self' blob:"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy and "data:" not in policy and "*" not in policy


def test_the_page_needs_nothing_the_policy_refuses() -> None:
    """No inline script, style attribute or event handler, and every URL it loads is the gateway's own."""
    html = (UI / "static" / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    for url in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert url.startswith("/function/ui/"), url
    # The icon is named, so the browser never asks the gateway for /favicon.ico.
    assert 'rel="icon" href="/function/ui/favicon.svg"' in html
    script = (UI / "static" / "app.js").read_text()
    assert "innerHTML" not in script and "eval(" not in script and "new Function" not in script


def test_unknown_path_is_a_json_404(client: Any) -> None:
    """A file the page does not have answers the API's error shape, code not_found."""
    reply = client.get("/missing.js")
    assert reply.status_code == 404
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.get_json()["error"]["code"] == "not_found"
    assert reply.get_json()["error"]["message"]


@pytest.mark.parametrize("path", [
    "/../handler.py", "/..%2fhandler.py", "/%2e%2e/handler.py", "/static/../handler.py", "/static/index.html",
    "//etc/passwd", "/..\\handler.py", "/handler.py",
])
def test_paths_outside_the_page_files_are_refused(client: Any, path: str) -> None:
    """Traversal, encoded or not, and the function's own source are a 404: only the listed files are served."""
    reply = client.get(path)
    assert reply.status_code == 404
    assert b"def handle" not in reply.data and b"root:" not in reply.data


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_only_get_and_head_are_allowed(client: Any, method: str) -> None:
    """A write to the page is a JSON 405 naming the methods it takes."""
    reply = client.open("/", method=method)
    assert reply.status_code == 405
    assert reply.get_json()["error"]["code"] == "method_not_allowed"
    assert reply.headers["Allow"] == "GET, HEAD"


def test_head_answers_headers_without_a_body(client: Any) -> None:
    """HEAD gives the page's type and policy, no bytes."""
    reply = client.head("/")
    assert reply.status_code == 200 and reply.data == b""
    assert reply.headers["Content-Type"].startswith("text/html")


def test_a_page_the_browser_holds_is_revalidated_by_etag(client: Any) -> None:
    """Cache-Control no-cache with an ETag: an unchanged file is a 304, a redeployed one is fetched again."""
    first = client.get("/app.js")
    assert first.headers["Cache-Control"] == "no-cache"
    etag = first.headers["ETag"]
    again = client.get("/app.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
