"""docs/openapi.yaml is valid OpenAPI 3.1 and agrees with the handlers, common/errors.py and the response bodies."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import openapi_spec_validator
import pytest
import yaml

from common import errors
from common.adapters.db import Document, Job, Page
from common.models import TRUSTED, JobStatus
from common.rules import documents
from common.rules.events import parse_event
from common.rules.listing import ListQuery
from common.rules.listing import page as listing_page
from common.rules.listing.recent import RecentPage
from common.rules.status import _body as status_body
from common.rules.status import _page as status_page
from common.web import auth
from common.web.upload_body import FORM_FIELDS, QUERY_PARAMETERS
from tests.support import RecordingMapping

REPO = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO / "docs" / "openapi.yaml"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}

# The paths each function is reached at through the gateway.
FUNCTION_PATHS = {
    "upload": ["/function/upload"],
    "status": ["/function/status/{job_id}", "/function/status"],
    "list": ["/function/list"],
    "documents": ["/function/documents/{document_id}", "/function/documents/{document_id}/reprocess",
                  "/function/documents/{document_or_job_id}/download/{kind}",
                  "/function/documents/{document_or_job_id}/pages/{page}/preview"],
    "ocr-process": ["/function/ocr-process"],
}
ALL_FUNCTION_PATHS = [path for paths in FUNCTION_PATHS.values() for path in paths]
# The API key schemes every public function takes (either one), and the internal token of ocr-process.
KEY_SECURITY: list[dict[str, list[str]]] = [{"bearerApiKey": []}, {"headerApiKey": []}]
INTERNAL_SECURITY: list[dict[str, list[str]]] = [{"internalToken": []}]
KEY_ID = "3f9c2a7b1d04"
NOW = datetime(2026, 1, 31, 12, 0, 0)


def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    return loaded


def node_ref_parts(ref: str) -> list[str]:
    assert ref.startswith("#/"), f"only local references are used: {ref}"
    return [p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/")]


def deref(document: dict[str, Any], node: Any) -> Any:
    """A node with its whole-node $ref followed (a response or parameter defined in components)."""
    while isinstance(node, dict) and set(node) == {"$ref"}:
        target: Any = document
        for part in node_ref_parts(node["$ref"]):
            target = target[part]
        node = target
    return node


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def error_codes_by_status(document: dict[str, Any], operation: dict[str, Any]) -> dict[int, set[str]]:
    """{HTTP status: the error codes its JSON body may carry} for one operation."""
    found: dict[int, set[str]] = {}
    for status, response in operation.get("responses", {}).items():
        response = deref(document, response)
        if not str(status).isdigit() or int(status) < 400:
            continue
        schema = response["content"]["application/json"]["schema"]
        codes = schema["properties"]["error"]["properties"]["code"]["enum"]
        found[int(status)] = set(codes)
    return found


def documented_http_codes(document: dict[str, Any]) -> dict[str, set[int]]:
    """{error code: every HTTP status the document lists it under}."""
    found: dict[str, set[int]] = {}
    for _, _, operation in operations(document):
        for status, codes in error_codes_by_status(document, operation).items():
            for code in codes:
                found.setdefault(code, set()).add(status)
    return found


def job_error_codes(document: dict[str, Any]) -> set[str]:
    return set(document["components"]["schemas"]["JobErrorCode"]["examples"])


def error_classes() -> dict[str, type[errors.PipelineError]]:
    """{code: class} of every error class in common/errors.py."""
    return {
        cls.code: cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.PipelineError)
    }


def source_files() -> list[Path]:
    return [p for p in [*(REPO / "common").rglob("*.py"), *(REPO / "functions").glob("*/handler.py")]
            if p.name != "errors.py"]


def raised_codes() -> set[str]:
    """Codes of the error classes the code constructs somewhere (base classes never raised are left out)."""
    text = "\n".join(p.read_text() for p in source_files())
    return {code for code, cls in error_classes().items() if re.search(rf"\b{cls.__name__}\(", text)}


def literal_job_codes() -> set[str]:
    """Job error codes written as literals rather than through an error class (e.g. attempts_exhausted)."""
    text = "\n".join(p.read_text() for p in source_files())
    return set(re.findall(r'error_code="(\w+)"', text))


def schema_validator(document: dict[str, Any], name: str) -> jsonschema.protocols.Validator:
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(root)


def handler_source(name: str) -> str:
    return (REPO / "functions" / name / "handler.py").read_text()


def is_internal(name: str) -> bool:
    """Whether the function takes the internal token (http_function(..., access="internal")) rather than a key."""
    return 'access="internal"' in handler_source(name)


def function_operations(document: dict[str, Any], name: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, method, operation in operations(document):
        if path in FUNCTION_PATHS[name]:
            yield path, method, operation


def security_of(document: dict[str, Any], operation: dict[str, Any]) -> list[dict[str, list[str]]]:
    """The security requirement that applies to an operation: its own, else the document's."""
    requirement: list[dict[str, list[str]]] = operation.get("security", document.get("security", []))
    return requirement


def sample_document(owner_id: str | None = KEY_ID) -> Document:
    return Document(id="6c1f1c2e-6d8a-4c51-9a5e-2f1f8e0b6a11", filename="scan.pdf", content_type="application/pdf",
                    size_bytes=1234, bucket="documents", object_key="uploads/x/scan.pdf", source="upload",
                    source_hash="0" * 64, created_at=NOW, owner_id=owner_id,
                    job_id="0b7f5f0e-1f0e-4e8e-9a55-1d2f3c4b5a69")


class FakeSession:
    """Answers each execute() with the next canned result, in the order the code under test asks."""

    def __init__(self, *results: Any) -> None:
        self.results = list(results)

    def execute(self, _statement: Any) -> Any:
        return self.results.pop(0)


def fake_scope(session: FakeSession) -> Any:
    @contextmanager
    def scope(_settings: Any) -> Iterator[FakeSession]:
        yield session

    return scope


# --- validity ------------------------------------------------------------------------------------


def test_document_is_valid_openapi_3_1() -> None:
    """openapi-spec-validator finds no error in docs/openapi.yaml (references included)."""
    document = spec()
    assert document["openapi"].startswith("3.1.")
    openapi_spec_validator.validate(document, cls=openapi_spec_validator.OpenAPIV31SpecValidator)


def test_every_function_is_documented_with_the_method_its_handler_takes() -> None:
    """Each functions/<name>/handler.py is described at its gateway paths, with the methods it requires."""
    document = spec()
    # ui serves the web page (static files, no key), not part of the API this document describes.
    functions = {p.name for p in (REPO / "functions").iterdir() if (p / "handler.py").is_file()} - {"ui"}
    assert set(FUNCTION_PATHS) == functions
    for name, paths in FUNCTION_PATHS.items():
        calls = re.findall(r"require_method\(request, ([^)]*)\)", handler_source(name))
        assert calls, f"{name} names no method"
        wanted = {m.strip().strip("'\"").lower() for call in calls for m in call.split(",")}
        for path in paths:
            assert path in document["paths"], f"{path} is not documented"
        documented = {m for path in paths for m in set(document["paths"][path]) & HTTP_METHODS}
        assert documented == wanted, name


# --- error codes ---------------------------------------------------------------------------------


def test_every_documented_error_code_is_defined_in_errors_py() -> None:
    """Each code the document lists (HTTP errors and job errors) is the code of a class in common/errors.py."""
    document = spec()
    known = set(error_classes()) | literal_job_codes()
    listed = set(documented_http_codes(document)) | job_error_codes(document)
    assert not listed - known, f"codes not in common/errors.py: {sorted(listed - known)}"


def test_http_error_codes_are_listed_under_their_own_status() -> None:
    """A code appears only under the HTTP status its class in common/errors.py carries."""
    classes = error_classes()
    for code, statuses in documented_http_codes(spec()).items():
        assert statuses == {classes[code].http_status}, f"{code} listed under {sorted(statuses)}"


def test_every_error_the_code_raises_is_documented() -> None:
    """Every error class constructed in common/ or the handlers has its code in the document."""
    document = spec()
    documented = set(documented_http_codes(document)) | job_error_codes(document)
    missing = raised_codes() - documented
    assert not missing, f"raised but undocumented: {sorted(missing)}"


def test_job_error_codes_cover_the_literal_ones() -> None:
    """Codes recorded on jobs as literals (not error classes) are in JobErrorCode too."""
    assert literal_job_codes() <= job_error_codes(spec())


def test_every_function_documents_the_errors_its_wrapper_can_give() -> None:
    """Each operation lists 405, 500 with config_invalid and internal_error, and 401 with its challenge;
    key-checked ones also 429 and credentials_in_url under 400 (internal ones are never rate limited)."""
    document = spec()
    for name in FUNCTION_PATHS:
        for path, method, operation in function_operations(document, name):
            where = f"{method.upper()} {path}"
            codes = error_codes_by_status(document, operation)
            assert codes[405] == {"method_not_allowed"}, where
            assert codes[500] == {"config_invalid", "internal_error"}, where
            assert "WWW-Authenticate" in deref(document, operation["responses"]["401"])["headers"], where
            if is_internal(name):
                assert codes[401] == {"unauthenticated"}, where
                assert 429 not in codes, where
                assert "credentials_in_url" not in codes.get(400, set()), where
            else:
                assert codes[401] == {"unauthenticated", "invalid_api_key"}, where
                assert codes[429] == {"rate_limited"}, where
                assert "Retry-After" in deref(document, operation["responses"]["429"])["headers"], where
                assert "credentials_in_url" in codes[400], where


def test_security_schemes_are_a_bearer_key_an_x_api_key_header_and_the_internal_token() -> None:
    """The schemes common/auth.py accepts: Bearer or X-Api-Key for keys, Bearer for the internal token."""
    schemes = spec()["components"]["securitySchemes"]
    assert schemes["bearerApiKey"]["type"] == "http" and schemes["bearerApiKey"]["scheme"] == "bearer"
    assert (schemes["headerApiKey"]["type"], schemes["headerApiKey"]["in"], schemes["headerApiKey"]["name"]) == (
        "apiKey", "header", "X-Api-Key")
    assert schemes["internalToken"]["type"] == "http" and schemes["internalToken"]["scheme"] == "bearer"


def test_each_function_requires_the_credential_its_wrapper_checks() -> None:
    """Key functions fall under the global key requirement (either scheme); ocr-process and its queue
    under the internal token."""
    document = spec()
    assert document["security"] == KEY_SECURITY
    for name in FUNCTION_PATHS:
        wanted = INTERNAL_SECURITY if is_internal(name) else KEY_SECURITY
        for path, method, operation in function_operations(document, name):
            assert security_of(document, operation) == wanted, f"{method.upper()} {path}"
    assert security_of(document, document["paths"]["/async-function/ocr-process"]["post"]) == INTERNAL_SECURITY


def test_no_documented_parameter_carries_a_credential() -> None:
    """No operation invites a key in the URL (auth.py refuses those names) or takes one as a plain header parameter."""
    document = spec()
    for path, method, operation in operations(document):
        for parameter in [*document["paths"][path].get("parameters", []), *operation.get("parameters", [])]:
            parameter = deref(document, parameter)
            assert parameter["name"].lower() not in auth._CREDENTIAL_PARAMETERS, f"{method.upper()} {path}"
            assert parameter["name"].lower() not in {"authorization", "x-api-key"}, f"{method.upper()} {path}"


def test_forbidden_is_documented_where_an_owner_can_be_named() -> None:
    """forbidden (a user key naming another owner) belongs to the list's `owner` parameter."""
    document = spec()
    listing_op = document["paths"]["/function/list"]["get"]
    assert error_codes_by_status(document, listing_op)[403] == {"forbidden"}


def test_upload_documents_exactly_the_parameters_and_fields_it_accepts() -> None:
    """upload's query parameters and multipart fields are the ones read_upload accepts (it refuses all others)."""
    document = spec()
    operation = document["paths"]["/function/upload"]["post"]
    query = {deref(document, p)["name"] for p in operation["parameters"] if deref(document, p)["in"] == "query"}
    assert query == set(QUERY_PARAMETERS)
    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(form["properties"]) == set(FORM_FIELDS) and form["additionalProperties"] is False


@pytest.mark.parametrize("path", ALL_FUNCTION_PATHS)
def test_every_function_response_declares_x_request_id(path: str) -> None:
    """Every answer of a function documents the X-Request-Id header."""
    document = spec()
    for p, _, operation in operations(document):
        if p != path:
            continue
        for status, response in operation["responses"].items():
            assert "X-Request-Id" in deref(document, response).get("headers", {}), f"{path} {status}"


def test_rate_limited_successes_declare_the_rate_limit_headers() -> None:
    """Every key-checked operation documents RateLimit-Limit/Remaining/Reset on its success answers; status X-Cache."""
    document = spec()
    wanted = {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"}
    for name in FUNCTION_PATHS:
        if is_internal(name):
            continue
        for path, method, operation in function_operations(document, name):
            for status, response in operation["responses"].items():
                if str(status).startswith("2"):
                    assert wanted <= set(deref(document, response)["headers"]), f"{method.upper()} {path} {status}"
    status = deref(document, document["paths"]["/function/status/{job_id}"]["get"]["responses"]["200"])
    assert "X-Cache" in status["headers"]


# --- bodies --------------------------------------------------------------------------------------


def test_list_query_parameters_are_the_ones_the_listing_reads() -> None:
    """GET /function/list documents exactly the query parameters ListQuery.from_params reads."""

    params = RecordingMapping({})
    ListQuery.from_params(params, TRUSTED)
    document = spec()
    documented = {
        deref(document, p)["name"]
        for p in document["paths"]["/function/list"]["get"]["parameters"]
        if deref(document, p)["in"] == "query"
    }
    assert documented == params.read


@pytest.mark.parametrize("owner_id", [KEY_ID, None])
@pytest.mark.parametrize("state", list(JobStatus))
def test_status_body_matches_the_documented_schema(state: JobStatus, owner_id: str | None) -> None:
    """What the status function returns for a job in each state, owned or not, validates against JobStatus."""
    now = NOW
    final = state in (JobStatus.COMPLETED, JobStatus.FAILED)
    document = sample_document(owner_id)
    job = Job(id="0b7f5f0e-1f0e-4e8e-9a55-1d2f3c4b5a69", document_id=document.id, status=state, lang="deu+eng",
              attempts=1, version=3, max_attempts=3, page_count=2 if final else None, pages_done=2 if final else 0,
              text="hello\n\f\nworld" if state == JobStatus.COMPLETED else None,
              error_code="pdf_encrypted" if state == JobStatus.FAILED else None,
              error_message="the PDF is encrypted" if state == JobStatus.FAILED else None,
              created_at=now, updated_at=now, started_at=None if state == JobStatus.PENDING else now,
              finished_at=now if final else None)
    body = status_body(job, document)
    words = [{"text": "hello", "confidence": 91.0, "left": 10, "top": 20, "width": 90, "height": 30}]
    scanned = Page(page_number=1, text="hello", confidence=91.5, method="ocr", width=2480, height=3508,
                   duration_ms=812, rotation=90, words=json.dumps(words))
    layered = Page(page_number=2, text="world", confidence=None, method="text_layer", width=None, height=None,
                   duration_ms=3, rotation=0, words=None)
    body["pages"] = [status_page(scanned, with_words=True), status_page(layered, with_words=True)]
    assert body["pages"][0]["words"] == words and body["pages"][1]["words"] == []
    schema_validator(spec(), "JobStatus").validate(body)
    assert set(body) <= set(spec()["components"]["schemas"]["JobStatus"]["properties"])
    assert body["owner_id"] == owner_id


@pytest.mark.parametrize("walked", [False, True], ids=["full-text index, exact total", "common word, estimated total"])
def test_list_body_matches_the_documented_schema(monkeypatch: pytest.MonkeyPatch, walked: bool) -> None:
    """A page list_documents builds (a searched one, in offset mode) validates against DocumentPage."""
    # `matches`: the full-text page's window COUNT of every match (the estimated path has no such column).
    row = SimpleNamespace(id="6c1f1c2e-6d8a-4c51-9a5e-2f1f8e0b6a11", job_id="0b7f5f0e-1f0e-4e8e-9a55-1d2f3c4b5a69",
                          filename="scan.pdf", content_type="application/pdf", size_bytes=1234, source="drop",
                          status=JobStatus.COMPLETED, page_count=2, created_at=NOW, owner_id=KEY_ID, matches=2)
    unowned = SimpleNamespace(**{**vars(row), "id": "7d2f2d3e-6d8a-4c51-9a5e-2f1f8e0b6a12", "owner_id": None})
    # The page by the full-text index, counting its matches itself; the walk's estimate counts documents.
    page = [SimpleNamespace(scalar_one=lambda: 2)] if walked else [SimpleNamespace(all=lambda: [row, unowned])]
    session = FakeSession(
        *page,
        SimpleNamespace(all=lambda: [(row.job_id, "an invoice of March"), (unowned.job_id, None)]),  # searched texts
    )
    recent = RecentPage(rows=[row, unowned], share=0.5, complete=False) if walked else None
    monkeypatch.setattr(listing_page, "read", lambda _settings, work, purpose: work(session))
    monkeypatch.setattr(listing_page, "search_recent", lambda _session, _query: recent)
    monkeypatch.setattr(listing_page, "page_statement", lambda _session, _query: SimpleNamespace(
        add_columns=lambda *_columns: "page with its count"))
    monkeypatch.setattr(listing_page, "count_statement", lambda _query, _cap=None: "count")
    query = ListQuery.from_params({"q": "invoice the", "owner": KEY_ID}, TRUSTED)
    body = listing_page.list_documents(None, query)  # type: ignore[arg-type]
    assert [item["owner_id"] for item in body["items"]] == [KEY_ID, None]
    assert (body["total"], body["total_exact"]) == ((1, False) if walked else (2, True))
    schema_validator(spec(), "DocumentPage").validate(body)
    item_schema = spec()["components"]["schemas"]["DocumentListItem"]
    assert all(set(item) <= set(item_schema["properties"]) for item in body["items"])


def test_document_description_matches_the_documented_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """What GET /function/documents/<id> answers (a re-processed document: one job pending, one failed) validates."""
    document = sample_document()
    pending = Job(id="1c8e6f1f-2f1f-4f9f-8a66-2e3f4d5c6b7a", document_id=document.id, status=JobStatus.PENDING,
                  lang="deu", created_at=NOW, finished_at=None, error_code=None, error_message=None)
    failed = Job(id=document.job_id, document_id=document.id, status=JobStatus.FAILED, lang="eng", created_at=NOW,
                 finished_at=NOW, error_code="pdf_encrypted", error_message="the PDF is encrypted")
    monkeypatch.setattr(documents, "_owned_document", lambda _settings, _id, _caller: document)
    monkeypatch.setattr(documents, "session_scope",
                        fake_scope(FakeSession(SimpleNamespace(scalars=lambda: iter([pending, failed])))))
    body = documents.describe(None, document.id, TRUSTED)  # type: ignore[arg-type]
    assert [job["job_id"] for job in body["jobs"]] == [pending.id, failed.id]
    schema_validator(spec(), "DocumentDetail").validate(body)


def test_a_minio_notification_matches_the_documented_event_schema() -> None:
    """A MinIO webhook body (as its webhook target sends it) validates against MinioEvent and parses."""
    event = {
        "EventName": "s3:ObjectCreated:Put",
        "Key": "documents/inbox/my+scan.pdf",
        "Records": [{
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": "2026-01-31T12:00:00.000Z",
            "eventName": "s3:ObjectCreated:Put",
            "userIdentity": {"principalId": "ocr-admin"},
            "requestParameters": {"sourceIPAddress": "172.18.0.1"},
            "responseElements": {"x-amz-request-id": "17F0A1B2C3D4E5F6"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "ocr-inbox",
                "bucket": {"name": "documents", "ownerIdentity": {"principalId": "ocr-admin"},
                           "arn": "arn:aws:s3:::documents"},
                "object": {"key": "inbox%2Fmy+scan.pdf", "size": 1234, "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                           "contentType": "application/pdf", "userMetadata": {"content-type": "application/pdf"},
                           "sequencer": "17F0A1B2C3D4E5F7"},
            },
            "source": {"host": "172.18.0.1", "port": "", "userAgent": "MinIO (linux; amd64) minio-go/v7"},
        }],
    }
    schema_validator(spec(), "OcrProcessRequest").validate(event)
    parsed = parse_event(json.dumps(event).encode())
    assert [(o.bucket, o.key) for o in parsed.objects] == [("documents", "inbox/my scan.pdf")]


def test_a_retry_request_matches_the_documented_schema() -> None:
    """`{"job_id": ...}` is the documented retry body and parses as one job id."""
    body = {"job_id": "0b7f5f0e-1f0e-4e8e-9a55-1d2f3c4b5a69"}
    schema_validator(spec(), "OcrProcessRequest").validate(body)
    assert parse_event(json.dumps(body).encode()).job_ids == [body["job_id"]]
