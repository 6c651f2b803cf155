"""Test support: generated documents with known words, and polling until a condition holds."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from PIL import Image, ImageDraw, ImageFont


def render_page(lines: list[str], size: tuple[int, int] = (2480, 1200)) -> Image.Image:
    """A scanned-style page: black text on white, at roughly 300 DPI letter width."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=56)
    for i, line in enumerate(lines):
        draw.text((160, 200 + i * 110), line, font=font, fill=0)
    return image


def image_bytes(lines: list[str], fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    render_page(lines).save(buf, format=fmt)
    return buf.getvalue()


def scanned_pdf(pages: list[list[str]]) -> bytes:
    """A PDF whose pages are images of text (no text layer), as a scanner makes them."""
    images = [render_page(lines) for lines in pages]
    buf = io.BytesIO()
    images[0].save(buf, format="PDF", save_all=True, append_images=images[1:], resolution=300)
    return buf.getvalue()



@contextmanager
def private_database(folder: Path, password: str, revision: str | None = "head") -> Iterator[Any]:
    """A MariaDB of the test's own on a free port, its schema at `revision` (None: an empty database);
    yields its Settings, stops it after."""
    from common.adapters.db import create_schema, dispose_engines
    from common.config import load_settings
    from ocrstack.services import MariaDB, free_port

    database = MariaDB(folder, free_port(), password=password)
    try:
        database.start()
        settings = load_settings({
            "MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": str(database.port), "MYSQL_USER": database.user,
            "MYSQL_PASSWORD": database.password, "MYSQL_DATABASE": database.database,
            "S3_ACCESS_KEY": "unused", "S3_SECRET_KEY": "unused", "SECRETS_DIR": str(folder / "secrets"),
        })
        if revision is not None:
            create_schema(settings, revision)
        yield settings
        dispose_engines()
    finally:
        database.stop()


def wait_until(predicate: Any, timeout: float, interval: float = 0.25, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


FINAL = ("completed", "failed")


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Gateway:
    """The HTTP calls a user makes with curl, as methods."""

    def __init__(self, base_url: str, api_key: str | None = None, basic_auth: tuple[str, str] | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=120), retries=False)
        # A key of its own per test: its own documents, and its own rate-limit buckets.
        self.default_headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # Or the gateway's own /system/* credentials (user admin and its password), as faas-cli login keeps them.
        if basic_auth:
            self.default_headers = urllib3.make_headers(basic_auth=":".join(basic_auth))
        # The public part of the key (ocr_<id>_<secret>): names the caller's inbox/<key id>/ folder.
        self.key_id = api_key.split("_")[1] if api_key else None

    def request(self, method: str, path: str, **kw: Any) -> Reply:
        kw["headers"] = {**self.default_headers, **(kw.get("headers") or {})}
        r = self.http.request(method, self.base + path, **kw)
        return Reply(r.status, r.headers, r.data)

    def follow_link(self, url: str) -> Any:
        """GET an absolute URL an answer gave (a result link) with this client's key, as a user follows it."""
        return self.http.request("GET", url, headers=self.default_headers)

    def upload(self, data: bytes, filename: str, headers: dict[str, str] | None = None, **fields: str) -> Reply:
        return self.request(
            "POST", "/function/upload", fields={"file": (filename, data, "application/octet-stream"), **fields},
            headers=headers,
        )

    def status(self, job_id: str, query: str = "") -> Reply:
        return self.request("GET", f"/function/status/{job_id}{query}")

    def wait_final(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            reply = self.status(job_id)
            if reply.status == 200 and reply.json()["status"] in FINAL:
                return reply.json()
            return None

        return wait_until(final, timeout, what=f"job {job_id} to finish")


class RecordingMapping(dict[str, str]):
    """A mapping (environment, query parameters) that remembers every name looked up in it."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)

    def getlist(self, key: str, type: Any = None) -> list[Any]:  # noqa: A002 (werkzeug's MultiDict API)
        self.read.add(key)
        return []


@dataclass
class Posted:
    """One request a scripted server got."""

    path: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"
    at: float = 0.0  # time.monotonic() on arrival


Answer = tuple[int, dict[str, str], bytes]


@contextmanager
def scripted_server(answers: list[Answer]) -> Iterator[tuple[str, list[Posted]]]:
    """An HTTP server on 127.0.0.1 answering its requests (GET, POST, DELETE) with `answers` in turn, the last
    one again once they run out; yields its base URL and what it got, and stops when the block ends."""
    import http.server
    import threading

    received: list[Posted] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append(Posted(self.path, dict(self.headers), body, self.command, time.monotonic()))
            status, headers, payload = answers[min(len(received), len(answers)) - 1]
            self.send_response(status)
            for name, value in {"Content-Length": str(len(payload)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _answer  # noqa: N815 (http.server's naming)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()


def receiver(status: int = 200,
             headers: dict[str, str] | None = None) -> AbstractContextManager[tuple[str, list[Posted]]]:
    """A webhook receiver answering every POST with `status` (and `headers`)."""
    return scripted_server([(status, headers or {}, b"")])


# Logs of the stack's own processes (gateway, functions, the retention schedule) and MinIO's (--json). Redis's
# and MariaDB's are in their own fixed formats and are left out.
OWN_LOGS = ("gateway/logs/*.log", "logs/gateway.log", "logs/retention.log", "logs/minio.log")


def log_lines(state_dir: Path) -> Iterator[tuple[Path, str]]:
    """Every line of every log the stack's own processes wrote under its state folder."""
    for pattern in OWN_LOGS:
        for path in sorted(state_dir.glob(pattern)):
            for line in path.read_text(errors="replace").splitlines():
                yield path, line


def not_json_records(state_dir: Path) -> list[str]:
    """The lines of those logs that are not one JSON object each (with where they were)."""
    bad: list[str] = []
    for path, line in log_lines(state_dir):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            bad.append(f"{path.relative_to(state_dir)}: {line[:300]}")
    return bad
