"""docs/openapi.yaml is valid OpenAPI 3.1 and agrees with the handlers, common/errors.py and the response bodies."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import openapi_spec_validator
import pytest
import yaml

from common import errors
from common.apikeys import TRUSTED
from common.db import Document, Job, JobStatus, Page
from common.events import parse_event
from tests.support import RecordingMapping
from common.listing import ListQuery
from common.status import _body as status_body
from common.status import _page as status_page

REPO = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO / "docs" / "openapi.yaml"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}

# The path each function is reached at through the gateway.
FUNCTION_PATHS = {
    "upload": "/function/upload",
    "status": "/function/status/{job_id}",
    "list": "/function/list",
    "ocr-process": "/function/ocr-process",
}


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
    return [p for p in [*(REPO / "common").glob("*.py"), *(REPO / "functions").glob("*/handler.py")]
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


# --- validity ------------------------------------------------------------------------------------


def test_document_is_valid_openapi_3_1() -> None:
    """openapi-spec-validator finds no error in docs/openapi.yaml (references included)."""
    document = spec()
    assert document["openapi"].startswith("3.1.")
    openapi_spec_validator.validate(document, cls=openapi_spec_validator.OpenAPIV31SpecValidator)


def test_every_function_is_documented_with_the_method_its_handler_takes() -> None:
    """Each functions/<name>/handler.py is described at its gateway path, with the method it requires."""
    document = spec()
    for name, path in FUNCTION_PATHS.items():
        handler = (REPO / "functions" / name / "handler.py").read_text()
        methods = re.search(r"require_method\(request, ([^)]*)\)", handler)
        assert methods is not None, f"{name} names no method"
        wanted = {m.strip().strip("'\"").lower() for m in methods.group(1).split(",")}
        assert path in document["paths"], f"{path} is not documented"
        assert set(document["paths"][path]) & HTTP_METHODS == wanted


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
    """Each function lists 405, and 500 with config_invalid and internal_error; rate-limited ones also 429."""
    document = spec()
    for name, path in FUNCTION_PATHS.items():
        handler = (REPO / "functions" / name / "handler.py").read_text()
        (operation,) = [op for p, _, op in operations(document) if p == path]
        codes = error_codes_by_status(document, operation)
        assert codes[405] == {"method_not_allowed"}
        assert codes[500] == {"config_invalid", "internal_error"}
        if "rate_limited=False" not in handler:
            assert codes[429] == {"rate_limited"}
            assert "Retry-After" in deref(document, operation["responses"]["429"])["headers"]
        else:
            assert 429 not in codes


@pytest.mark.parametrize("path", list(FUNCTION_PATHS.values()))
def test_every_function_response_declares_x_request_id(path: str) -> None:
    """Every answer of a function documents the X-Request-Id header."""
    document = spec()
    for p, _, operation in operations(document):
        if p != path:
            continue
        for status, response in operation["responses"].items():
            assert "X-Request-Id" in deref(document, response).get("headers", {}), f"{path} {status}"


def test_rate_limited_successes_declare_the_rate_limit_headers() -> None:
    """upload, status and list document RateLimit-Limit/Remaining/Reset on their success answers; status X-Cache."""
    document = spec()
    wanted = {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"}
    for path, success in (("/function/upload", "202"), ("/function/status/{job_id}", "200"), ("/function/list", "200")):
        response = deref(document, document["paths"][path]["get" if path != "/function/upload" else "post"]["responses"][success])
        assert wanted <= set(response["headers"]), path
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


@pytest.mark.parametrize("state", list(JobStatus))
def test_status_body_matches_the_documented_schema(state: JobStatus) -> None:
    """What the status function returns for a job in each state validates against the JobStatus schema."""
    now = datetime(2026, 1, 31, 12, 0, 0)
    final = state in (JobStatus.COMPLETED, JobStatus.FAILED)
    document = Document(id="6c1f1c2e-6d8a-4c51-9a5e-2f1f8e0b6a11", filename="scan.pdf",
                        content_type="application/pdf", size_bytes=1234, bucket="documents",
                        object_key="uploads/x/scan.pdf", source="upload", source_hash="0" * 64, created_at=now)
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
