"""Reading an uploaded document out of an HTTP request without trusting its size, name or type."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import IO

import flask
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from common.engine.media import media_type_of
from common.errors import BadRequest, FileTooLarge, MissingFile, PipelineError, unknown_parameters
from common.models import UPLOAD_FORM_ROOM_BYTES

# Uploads above this size go to a temporary file rather than memory. Small: the gateway hands the body over
# whole and at once, so a larger buffer would only raise the function's memory per upload in flight.
_SPOOL_BYTES = 1024 * 1024
# What an upload may carry besides the file: the query string, and the multipart form's other fields.
QUERY_PARAMETERS = ["filename", "lang", "callback_url", "output"]
FORM_FIELDS = ["file", "lang", "callback_url", "output"]


@dataclass
class UploadedFile:
    data: IO[bytes]
    size: int
    filename: str | None
    media_type: str


def _too_large(limit: int) -> FileTooLarge:
    return FileTooLarge(f"the upload exceeds the limit of {limit} bytes (MAX_UPLOAD_BYTES)")


def _spool(stream: IO[bytes], limit: int) -> tuple[IO[bytes], int]:
    """Copy a body to a spooled file, stopping as soon as it passes the limit."""
    out = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)
    size = 0
    while chunk := stream.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            out.close()
            raise _too_large(limit)
        out.write(chunk)
    out.seek(0)
    return out, size


def read_upload(request: flask.Request, limit: int) -> UploadedFile:
    """The file of a multipart form (field `file`) or of a raw body; type decided from its first bytes."""
    unknown = sorted(set(request.args) - set(QUERY_PARAMETERS))
    if unknown:  # before a byte of the body is read
        raise unknown_parameters(unknown, QUERY_PARAMETERS)
    if request.content_length is not None and request.content_length > limit + UPLOAD_FORM_ROOM_BYTES:
        raise _too_large(limit)
    try:
        if request.mimetype == "multipart/form-data":
            request.max_content_length = limit + UPLOAD_FORM_ROOM_BYTES
            parts = request.files.getlist("file")
            if not parts:
                raise MissingFile("the multipart form has no field named 'file'")
            if len(parts) > 1 or len(request.form.getlist("file")) > 0:
                # Which one was meant cannot be told: keeping the first would OCR a file the client may not expect.
                raise BadRequest(f"the multipart form has {len(parts) + len(request.form.getlist('file'))} fields "
                                 "named 'file'; send one file per upload")
            part = parts[0]
            unknown = sorted((set(request.form) | set(request.files)) - set(FORM_FIELDS))
            if unknown:
                raise unknown_parameters(unknown, FORM_FIELDS, kind="form field")
            data, size = _spool(part.stream, limit)
            filename = part.filename
        else:
            data, size = _spool(request.stream, limit)
            filename = request.args.get("filename")
    except RequestEntityTooLarge as e:
        raise _too_large(limit) from e
    except ClientDisconnected as e:
        raise BadRequest("the client disconnected before the upload was complete") from e
    try:
        media_type = media_type_of(data, "the file")
    except PipelineError:
        data.close()
        raise
    return UploadedFile(data=data, size=size, filename=filename, media_type=media_type)
