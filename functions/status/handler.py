"""status: a job's state, timestamps, page progress, error and, once completed, its text and result links."""

from __future__ import annotations

import flask

from common.config import Settings
from common.errors import BadRequest, JobNotCompleted
from common.models import Principal
from common.rules.page_layout import page_range
from common.rules.status import job_status, parse_include
from common.web.api import http_function, require_method
from common.web.links import public_base


def job_id_in(request: flask.Request) -> str:
    return request.path.strip("/").split("/")[-1] or request.args.get("job_id", "")


@http_function("status", status_ahead=job_id_in)
def handle(request: flask.Request, settings: Settings, caller: Principal) -> flask.Response:
    require_method(request, "GET")
    job_id = job_id_in(request)
    if not job_id:
        raise BadRequest("name the job: GET /function/status/<job_id> (or a document id: its current job)")
    include = parse_include(request.args.get("include"))
    read = job_status(settings, job_id, caller, include, page_range(request.args, bool(include & {"words", "lines"})),
                      public_base(request, settings))
    if request.args.get("format") == "text":
        if read.status != "completed":
            # The id asked for may be a document's: name the job it stands for.
            raise JobNotCompleted(f"job {read.body['job_id']} is {read.status}; its text exists once it is completed")
        return flask.Response(read.body["text"], mimetype="text/plain", headers={"X-Cache": read.cache})
    # The stored JSON as it is: json_response would encode the whole answer again on every read.
    return flask.Response(read.json_bytes(), mimetype="application/json", headers={"X-Cache": read.cache})
