"""list: documents with their job status, filtered, searched, paged (contract: common/rules/listing/__init__.py)."""

from __future__ import annotations

import flask

from common.config import Settings
from common.models import Principal
from common.rules.listing import ListQuery, list_documents
from common.web.api import http_function, json_response, require_method


@http_function("list")
def handle(request: flask.Request, settings: Settings, caller: Principal) -> flask.Response:
    require_method(request, "GET")
    # request.args is a MultiDict: ListQuery refuses unknown and repeated parameters by name, and keeps a
    # user key to its own documents.
    return json_response(list_documents(settings, ListQuery.from_params(request.args, caller)))
