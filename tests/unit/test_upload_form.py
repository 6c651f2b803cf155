"""The upload form: exactly one `file` part; two are refused, not silently resolved to one."""

from __future__ import annotations

import io

import flask
import pytest

from common.errors import BadRequest
from common.web.upload_body import read_upload

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def test_two_file_parts_are_refused_with_400() -> None:
    """Which of two files was meant cannot be told: 400 bad_request naming the count."""
    app = flask.Flask(__name__)
    data = {"file": [(io.BytesIO(PNG), "a.png"), (io.BytesIO(PNG), "b.png")]}
    with app.test_request_context("/", method="POST", data=data, content_type="multipart/form-data"):
        with pytest.raises(BadRequest, match="2 fields named 'file'") as refused:
            read_upload(flask.request, 1024 * 1024)
    assert refused.value.code == "bad_request" and refused.value.http_status == 400


def test_a_file_part_beside_a_text_field_named_file_is_refused() -> None:
    """A text field `file` next to the file part is a second `file` too."""
    app = flask.Flask(__name__)
    data = {"file": [(io.BytesIO(PNG), "a.png"), "not a file"]}
    with app.test_request_context("/", method="POST", data=data, content_type="multipart/form-data"):
        with pytest.raises(BadRequest, match="fields named 'file'"):
            read_upload(flask.request, 1024 * 1024)
