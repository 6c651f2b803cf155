"""upload: take a document over HTTP (multipart field `file`, or a raw body with ?filename=), answer 202."""

from __future__ import annotations

from typing import BinaryIO, cast

from typing import BinaryIO, cast

import flask

from common.config import Settings
from common.engine.languages import validate_lang
from common.models import Principal
from common.rules.documents import accept_upload, safe_filename
from common.web.api import current_request_id, http_function, json_response, require_method
from common.web.upload_body import read_upload


@http_function("upload")
def handle(request: flask.Request, settings: Settings, caller: Principal) -> flask.Response:
    require_method(request, "POST")
    upload = read_upload(request, settings.max_upload_bytes)
    lang = validate_lang(request.values.get("lang") or settings.default_lang)
    with upload.data:
        accepted = accept_upload(
            settings,
            cast(BinaryIO, upload.data),  # a spooled temporary file, binary though typed IO[bytes]
            upload.size,
            safe_filename(upload.filename, "document"),
            upload.media_type,
            lang,
            current_request_id(),
            caller.key_id,
        )
    base = settings.public_url or request.host_url.rstrip("/")
    return json_response(accepted.to_dict(base), 202, headers={"Location": accepted.status_url(base)})
