"""status: a job's state, timestamps, page progress, error and, once completed, its text."""

from __future__ import annotations

import flask

from common.api import http_function, json_response, require_method
from common.config import Settings
from common.errors import BadRequest
from common.status import job_status


@http_function("status")
def handle(request: flask.Request, settings: Settings) -> flask.Response:
    require_method(request, "GET")
    job_id = request.path.strip("/").split("/")[-1] or request.args.get("job_id", "")
    if not job_id:
        raise BadRequest("name the job: GET /function/status/<job_id>")
    read = job_status(settings, job_id, include_pages=request.args.get("include") == "pages")
    return json_response(read.body, headers={"X-Cache": read.cache})
