"""status: a job's state, timestamps, page progress, error and, once completed, its text and result links."""

from __future__ import annotations

import flask

from common.config import Settings
from common.errors import BadRequest, JobNotCompleted
from common.models import Principal
from common.rules.status import job_status, parse_include
from common.web.api import http_function, json_response, require_method


@http_function("status")
def handle(request: flask.Request, settings: Settings, caller: Principal) -> flask.Response:
    require_method(request, "GET")
    job_id = request.path.strip("/").split("/")[-1] or request.args.get("job_id", "")
    if not job_id:
        raise BadRequest("name the job: GET /function/status/<job_id>")
    read = job_status(settings, job_id, caller, parse_include(request.args.get("include")))
    if request.args.get("format") == "text":
        if read.body["status"] != "completed":
            raise JobNotCompleted(f"job {job_id} is {read.body['status']}; its text exists once it is completed")
        return flask.Response(read.body["text"], mimetype="text/plain", headers={"X-Cache": read.cache})
    return json_response(read.body, headers={"X-Cache": read.cache})
