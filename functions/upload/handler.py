"""upload: take a document over HTTP (multipart field `file`, or a raw body with ?filename=), answer 202."""

from __future__ import annotations

from typing import BinaryIO, cast

import flask

from common.config import Settings
from common.engine.language.installed import validate_lang
from common.models import Principal
from common.rules import idempotency, outputs
from common.rules.intake import Upload, safe_filename, take_upload
from common.web.api import current_request_id, http_function, json_response, require_method
from common.web.upload_body import read_upload


@http_function("upload")
def handle(request: flask.Request, settings: Settings, caller: Principal) -> flask.Response:
    require_method(request, "POST")
    upload = read_upload(request, settings.max_upload_bytes)
    with upload.data:
        # Both checked against what the schema holds: a 400 naming the limit, never a failed insert.
        lang = validate_lang(request.values.get("lang") or settings.default_lang)
        filename = safe_filename(upload.filename, "document", refuse_long=True)
        # A spooled temporary file, binary though typed IO[bytes].
        document = Upload(cast(BinaryIO, upload.data), upload.size, filename, upload.media_type, lang)
        accepted, replayed = take_upload(
            settings,
            document,
            current_request_id(),
            caller,
            callback_url=request.values.get("callback_url") or None,
            pdfa=outputs.wants_pdfa(settings, request.values.get("output")),
            idempotency_key=idempotency.key_of(request.headers.get(idempotency.HEADER)),
        )
    base = settings.public_url or request.host_url.rstrip("/")
    headers = {"Location": accepted.status_url(base), **({"Idempotent-Replayed": "true"} if replayed else {})}
    return json_response(accepted.to_dict(base), 202, headers=headers)
