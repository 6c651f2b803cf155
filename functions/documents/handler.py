"""documents: one document of the caller's: GET describes it, DELETE removes it, POST .../reprocess OCRs it again."""

from __future__ import annotations

import flask

from common.config import Settings
from common.engine.language.installed import validate_lang
from common.errors import NotFound, unknown_parameters
from common.models import Principal
from common.rules import documents
from common.web.api import current_request_id, http_function, json_response, require_method


@http_function("documents")
def handle(request: flask.Request, settings: Settings, caller: Principal) -> flask.Response:
    parts = [p for p in request.path.split("/") if p]
    if len(parts) == 1:
        require_method(request, "GET", "DELETE")
        if request.args:
            raise unknown_parameters(sorted(request.args), [])
        if request.method == "DELETE":
            documents.delete_document(settings, parts[0], caller)
            return flask.Response(status=204)
        return json_response(documents.describe(settings, parts[0], caller))
    if len(parts) == 2 and parts[1] == "reprocess":
        require_method(request, "POST")
        unknown = sorted(set(request.values) - {"lang"})
        if unknown:
            raise unknown_parameters(unknown, ["lang"])
        lang = validate_lang(request.values.get("lang") or settings.default_lang)
        accepted = documents.reprocess(settings, parts[0], caller, lang, current_request_id())
        base = settings.public_url or request.host_url.rstrip("/")
        return json_response(accepted.to_dict(base), 202, headers={"Location": accepted.status_url(base)})
    raise NotFound("use /function/documents/<document_id> (GET, DELETE) or "
                   "/function/documents/<document_id>/reprocess (POST)")
