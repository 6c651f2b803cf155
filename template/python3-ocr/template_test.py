"""Build-time checks of the python3-ocr image: the handler loads, bodies pass unchanged, OCR tools exist."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import functions_framework
import pytest

HOME = Path(__file__).resolve().parent
HANDLER = HOME / "function" / "handler.py"

ECHO_HANDLER = '''
import hashlib

import flask


def handle(request: flask.Request) -> flask.Response:
    data = request.get_data()
    return flask.jsonify(size=len(data), sha256=hashlib.sha256(data).hexdigest())
'''


def test_handler_loads_as_functions_framework_target() -> None:
    """function/handler.py imports (common included) and exposes `handle` to functions-framework."""
    app = functions_framework.create_app("handle", str(HANDLER))
    assert app is not None


@pytest.mark.parametrize(
    "content_type",
    ["application/pdf", "image/png", "application/octet-stream", "text/plain", None],
)
def test_binary_body_reaches_handler_unchanged(tmp_path: Path, content_type: str | None) -> None:
    """Whatever the Content-Type, the handler's request.get_data() holds the exact bytes sent."""
    source = tmp_path / "echo_handler.py"
    source.write_text(ECHO_HANDLER)
    body = b"%PDF-1.7\r\n\x00\xff\xfe" + os.urandom(64 * 1024) + b"\x00"
    client = functions_framework.create_app("handle", str(source)).test_client()
    headers = {"Content-Type": content_type} if content_type else {}
    answer = client.post("/", data=body, headers=headers)
    assert answer.status_code == 200
    assert answer.get_json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_tesseract_has_the_template_languages() -> None:
    """tesseract lists the traineddata the image installs: eng, deu, fra, spa and osd."""
    listed = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, check=True)
    languages = set((listed.stdout + listed.stderr).split())
    assert {"eng", "deu", "fra", "spa", "osd"} <= languages


@pytest.mark.parametrize("program", ["pdftoppm", "pdftotext", "pdfunite"])
def test_poppler_programs_are_installed(program: str) -> None:
    """Rendering, the text-layer check and joining image pages run poppler's command-line programs."""
    assert shutil.which(program), f"{program} is not on PATH"
