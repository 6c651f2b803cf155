"""documents: one document of the caller's: GET describes it, DELETE removes it, POST .../reprocess OCRs it again,
GET .../download/{text,pdf,hocr,original} streams a result or the original, GET .../pages/{n}/preview a page's PNG."""

from __future__ import annotations

import flask

from common.config import Settings
from common.engine.language.installed import validate_lang
from common.errors import NotFound, PageNotFound, unknown_parameters
from common.models import Principal
from common.rules import documents, downloads, previews
from common.web.api import current_request_id, http_function, json_response, require_method
from common.web.links import public_base


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
        base = public_base(request, settings)
        return json_response(accepted.to_dict(base), 202, headers={"Location": accepted.status_url(base)})
    if len(parts) == 3 and parts[1] == "download":
        require_method(request, "GET")
        found = downloads.download(settings, parts[0], parts[2], caller)
        # Streamed: the body is read from MinIO a chunk at a time as the client takes it.
        response = flask.Response(found.chunks, content_type=found.content_type, direct_passthrough=True)
        response.content_length = found.size
        response.headers["Content-Disposition"] = found.content_disposition()
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
    if len(parts) == 4 and parts[1] == "pages" and parts[3] == "preview":
        require_method(request, "GET")
        if not parts[2].isdigit():
            raise PageNotFound("pages are numbered from 1: /function/documents/<id>/pages/<n>/preview")
        image = previews.preview(settings, parts[0], int(parts[2]), caller)
        response = flask.Response(image.chunks, content_type="image/png", direct_passthrough=True)
        response.content_length = image.size
        # A page's picture never changes while its job lives: the browser may keep it (private: behind a key).
        response.headers["Cache-Control"] = "private, max-age=86400"
        return response
    raise NotFound("use /function/documents/<document_id> (GET, DELETE), "
                   "/function/documents/<document_id>/reprocess (POST) or "
                   "/function/documents/<document_or_job_id>/download/<text|pdf|hocr|original> (GET) or "
                   "/function/documents/<document_or_job_id>/pages/<n>/preview (GET)")
