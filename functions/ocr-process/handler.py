"""ocr-process: OCR the documents named by a MinIO bucket notification, or retry a job by id."""

from __future__ import annotations

import flask

from common.config import Settings
from common.models import Principal
from common.rules.pipeline import default_engine, process_event
from common.web.api import http_function, json_response, require_method


@http_function("ocr-process", access="internal")
def handle(request: flask.Request, settings: Settings, caller: Principal) -> flask.Response:
    require_method(request, "POST")
    outcomes = process_event(settings, request.get_data(), default_engine(settings))
    return json_response({"outcomes": [o.to_dict() for o in outcomes]})
