"""Who may see what, over HTTP through the gateway: keys, owners, deletion, re-processing, internal ocr-process."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from common.adapters import cache
from common.adapters.db import ApiKey, Document, Job, Page, session_scope, utcnow
from common.config import Settings
from common.errors import InvalidApiKey
from common.rules import apikeys
from tests.integration.conftest import new_key
from tests.support import Gateway, image_bytes, scanned_pdf, wait_until

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def _cli(stack: Any, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The project's command line, as an operator runs it against the stack's database."""
    env = dict(os.environ, **stack.function_env(), **(extra_env or {}))
    return subprocess.run([sys.executable, "-m", "common", *args], env=env, capture_output=True, text=True,
                          timeout=60, cwd=REPO_ROOT)


def _completed(gateway: Gateway, lines: list[str], name: str = "page.png", **fields: str) -> dict[str, Any]:
    reply = gateway.upload(image_bytes(lines), name, **fields)
    assert reply.status == 202, reply.body
    done = gateway.wait_final(reply.json()["job_id"])
    assert done["status"] == "completed", done
    return done


def test_a_second_key_sees_nothing_of_the_first_keys_documents(gateway: Gateway, stack: Any,
                                                               settings: Settings, admin: Gateway) -> None:
    """Another user key gets 404 for the job and the document, and an empty listing; an admin sees both owners."""
    mine = _completed(gateway, ["PRIVATE letter of the first key"], "mine.png")
    other = Gateway(stack.gateway_url, api_key=new_key(settings))
    theirs = _completed(other, ["the second key's own page"], "theirs.png")

    # One request id for both: error bodies carry it, and it must not be the difference.
    same_id = {"X-Request-Id": f"req-{uuid.uuid4().hex}"}
    foreign = other.request("GET", f"/function/status/{mine['job_id']}", headers=same_id)
    missing = other.request("GET", f"/function/status/{uuid.uuid4()}", headers=same_id)
    assert foreign.status == missing.status == 404
    # Exactly the body of a job that does not exist, but for the id it names.
    assert foreign.body.replace(mine["job_id"].encode(), b"ID") == missing.body.replace(
        missing.json()["error"]["message"].split()[1].encode(), b"ID")
    assert other.status(mine["job_id"], "?include=words").status == 404
    assert other.request("GET", f"/function/documents/{mine['document_id']}").status == 404
    assert other.request("DELETE", f"/function/documents/{mine['document_id']}").status == 404
    assert other.request("POST", f"/function/documents/{mine['document_id']}/reprocess").status == 404
    listed = {item["document_id"] for item in other.request("GET", "/function/list?limit=100").json()["items"]}
    assert theirs["document_id"] in listed and mine["document_id"] not in listed
    searched = other.request("GET", "/function/list?q=private").json()["items"]
    assert mine["document_id"] not in {item["document_id"] for item in searched}
    own = gateway.request("GET", "/function/list?q=private").json()["items"]
    assert mine["document_id"] in {item["document_id"] for item in own}
    # Each job carries its document's owner and whether it is the shown one: a user key's search by the
    # full-text index checks its hits there (rules/listing/query.py).
    with session_scope(settings) as session:
        copied = session.execute(select(Job.document_owner_id, Job.shown).where(
            Job.id.in_([mine["job_id"], theirs["job_id"]])).order_by(Job.document_owner_id == other.key_id)).all()
    assert [tuple(row) for row in copied] == [(gateway.key_id, True), (other.key_id, True)]
    # The cached status of the first key's job (it was read above) is not served to the second key either.
    assert gateway.status(mine["job_id"]).headers["X-Cache"] == "hit"
    assert other.status(mine["job_id"]).status == 404

    assert admin.status(mine["job_id"]).json()["owner_id"] == gateway.key_id
    everyone = {item["document_id"] for item in admin.request("GET", "/function/list?limit=100").json()["items"]}
    assert {mine["document_id"], theirs["document_id"]} <= everyone
    only_first = admin.request("GET", f"/function/list?limit=100&owner={gateway.key_id}").json()["items"]
    assert {item["owner_id"] for item in only_first} == {gateway.key_id}
    refused = other.request("GET", f"/function/list?owner={gateway.key_id}")
    assert refused.status == 403 and refused.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "unauthenticated"),
        ({"Authorization": "Bearer not-a-key"}, "invalid_api_key"),
        ({"X-Api-Key": "ocr_0123456789ab_" + "x" * 43}, "invalid_api_key"),
        ({"Authorization": "Basic YWRtaW46YWRtaW4="}, "unauthenticated"),
    ],
)
def test_requests_without_a_valid_key_are_401_with_a_challenge(stack: Any, headers: dict[str, str], code: str) -> None:
    """No key, a malformed key, an unknown key or another scheme: 401 JSON with WWW-Authenticate, on every function."""
    anonymous = Gateway(stack.gateway_url)
    for method, path in (("GET", f"/function/status/{uuid.uuid4()}"), ("GET", "/function/list"),
                         ("POST", "/function/upload"), ("DELETE", f"/function/documents/{uuid.uuid4()}")):
        reply = anonymous.request(method, path, headers=headers)
        assert reply.status == 401, (path, reply.body)
        assert reply.json()["error"]["code"] == code
        assert reply.headers["WWW-Authenticate"].startswith('Bearer realm="ocr-pipeline"')


def test_x_api_key_header_works_like_bearer(gateway: Gateway, stack: Any) -> None:
    """The same key sent as X-Api-Key reaches the same documents."""
    token = gateway.default_headers["Authorization"].split()[1]
    plain = Gateway(stack.gateway_url)
    reply = plain.request("GET", "/function/list", headers={"X-Api-Key": token})
    assert reply.status == 200


@pytest.mark.parametrize("query", ["api_key={token}", "token={token}", "filename={token}", "key=anything"])
def test_a_key_in_the_query_string_is_refused(gateway: Gateway, query: str) -> None:
    """Keys in URLs end up in logs: 400 credentials_in_url, and the key is not echoed back."""
    token = gateway.default_headers["Authorization"].split()[1]
    reply = gateway.request("GET", "/function/list?" + query.format(token=token))
    assert reply.status == 400 and reply.json()["error"]["code"] == "credentials_in_url"
    assert token.encode() not in reply.body


def test_revoked_key_is_refused_at_once(gateway: Gateway, stack: Any) -> None:
    """`keys revoke` through the command line: the key's next request is 401."""
    assert gateway.request("GET", "/function/list").status == 200  # cached now
    revoked = _cli(stack, "keys", "revoke", str(gateway.key_id))
    assert revoked.returncode == 0, revoked.stderr
    reply = gateway.request("GET", "/function/list")
    assert reply.status == 401 and reply.json()["error"]["code"] == "invalid_api_key"
    assert "revoked" in reply.json()["error"]["message"]
    listed = json.loads(_cli(stack, "keys", "list", "--json").stdout)
    mine = next(k for k in listed if k["id"] == gateway.key_id)
    assert mine["revoked_at"] and mine["last_used_at"]
    assert "secret_hash" not in mine and all("ocr_" not in str(v) for v in mine.values())


def test_a_revocation_the_cache_missed_takes_effect_within_auth_cache_seconds(settings: Settings) -> None:
    """Revoked in MySQL while Redis kept the record: refused once AUTH_CACHE_SECONDS have passed, not later."""
    short = replace(settings, auth_cache_seconds=1.0)
    created = apikeys.create(short, "bound-test")
    assert apikeys.verify(short, created.token).key_id == created.info.id  # now in Redis for 1 s
    with session_scope(short) as session:  # what a revoke does when Redis cannot be told
        key = session.get(ApiKey, created.info.id)
        assert key is not None
        key.revoked_at = utcnow()
    assert apikeys.verify(short, created.token).key_id == created.info.id  # still the cached record
    time.sleep(1.2)
    with pytest.raises(InvalidApiKey):
        apikeys.verify(short, created.token)


def test_command_line_creates_keys_that_work_and_shows_the_secret_once(stack: Any) -> None:
    """`keys create` prints the key once; `keys list` never shows it; an admin key lists every owner."""
    made = _cli(stack, "keys", "create", "--name", "cli-admin", "--role", "admin", "--json")
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert created["role"] == "admin" and created["key"].startswith(f"ocr_{created['id']}_")
    assert created["key"] not in _cli(stack, "keys", "list").stdout
    cli_admin = Gateway(stack.gateway_url, api_key=created["key"])
    assert cli_admin.request("GET", f"/function/list?owner={created['id']}").status == 200
    bad = _cli(stack, "keys", "create", "--name", "x", "--role", "root")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_ocr_process_takes_only_the_internal_token(gateway: Gateway, internal: dict[str, str]) -> None:
    """A client's key, no credentials or a wrong token on ocr-process: 401; the internal token gets through."""
    event = json.dumps({"job_id": str(uuid.uuid4())}).encode()
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": ""}):
        reply = gateway.request("POST", "/function/ocr-process", body=event,
                                headers={"Content-Type": "application/json", **headers})
        assert reply.status == 401, reply.body
        assert reply.json()["error"]["code"] == "unauthenticated"
    allowed = gateway.request("POST", "/function/ocr-process", body=event, headers=internal)
    assert allowed.status == 200 and allowed.json()["outcomes"][0]["error_code"] == "job_not_found"


def test_upload_refuses_unknown_parameters_by_name(gateway: Gateway) -> None:
    """`language=deu` would silently run English: it is a 400 naming the parameter and the accepted ones."""
    query = gateway.request("POST", "/function/upload?language=deu", body=image_bytes(["x"]))
    assert query.status == 400 and "language" in query.json()["error"]["message"]
    assert "lang" in query.json()["error"]["message"]
    form = gateway.upload(image_bytes(["x"]), "x.png", language="deu")
    assert form.status == 400 and "language" in form.json()["error"]["message"]


def _traces(settings: Settings, s3: Any, document_id: str, job_ids: list[str], keys: list[str]) -> list[str]:
    """Everything of a document still in MySQL, Redis or MinIO, named; empty when it is all gone."""
    left = []
    with session_scope(settings) as session:
        if session.get(Document, document_id) is not None:
            left.append("documents row")
        if session.execute(select(func.count()).select_from(Job).where(Job.id.in_(job_ids))).scalar_one():
            left.append("jobs rows")
        if session.execute(select(func.count()).select_from(Page).where(Page.job_id.in_(job_ids))).scalar_one():
            left.append("pages rows")
    for job_id in job_ids:
        if cache.read_status(settings, job_id) is not None:
            left.append(f"cached status of {job_id}")
        results = list(s3.list_objects(settings.s3_bucket, prefix=f"{settings.results_prefix}{job_id}/",
                                       recursive=True))
        if results:
            left.append(f"results of {job_id}")
    for key in keys:
        if list(s3.list_objects(settings.s3_bucket, prefix=key)):
            left.append(f"object {key}")
    return left


def test_delete_removes_every_trace_and_a_second_delete_is_404(gateway: Gateway, settings: Settings,
                                                               s3: Any) -> None:
    """After DELETE nothing of the document is in MySQL, Redis or MinIO, and status answers 404."""
    done = _completed(gateway, ["DELETE me entirely"], "gone.png")
    with session_scope(settings) as session:
        key = session.get(Document, done["document_id"]).object_key  # type: ignore[union-attr]
    assert gateway.status(done["job_id"]).headers["X-Cache"] == "hit"
    assert done["outputs"]
    assert _traces(settings, s3, done["document_id"], [done["job_id"]], [key])

    reply = gateway.request("DELETE", f"/function/documents/{done['document_id']}")
    assert reply.status == 204, reply.body
    assert _traces(settings, s3, done["document_id"], [done["job_id"]], [key]) == []
    assert gateway.status(done["job_id"]).status == 404
    again = gateway.request("DELETE", f"/function/documents/{done['document_id']}")
    assert again.status == 404 and again.json()["error"]["code"] == "document_not_found"
    assert gateway.request("GET", "/function/list?q=entirely").json()["items"] == []


def test_deleting_a_document_while_it_is_processed_cancels_it(gateway: Gateway, settings: Settings, s3: Any) -> None:
    """A job still running is cancelled: its worker writes nothing afterwards, and nothing remains."""
    pages = [[f"running page {n} of a long scan"] for n in range(6)]
    accepted = gateway.upload(scanned_pdf(pages), "long.pdf").json()
    wait_until(lambda: gateway.status(accepted["job_id"]).json()["status"] == "processing", 60,
               interval=0.05, what="the job to start")
    reply = gateway.request("DELETE", f"/function/documents/{accepted['document_id']}")
    assert reply.status == 204, reply.body
    key = f"{settings.upload_prefix}{accepted['document_id']}/long.pdf"
    time.sleep(8)  # long enough for the worker to have run into the cancellation on its next page
    assert _traces(settings, s3, accepted["document_id"], [accepted["job_id"]], [key]) == []


def test_reprocess_keeps_the_previous_result_until_the_new_one_completes(gateway: Gateway) -> None:
    """A new job with another language on the same document; the listing shows the old result until it is done."""
    first = _completed(gateway, ["Zeugnis und Urkunde"], "german.png")
    document = first["document_id"]
    reply = gateway.request("POST", f"/function/documents/{document}/reprocess", fields={"lang": "deu"})
    assert reply.status == 202, reply.body
    again = reply.json()
    assert again["document_id"] == document and again["job_id"] != first["job_id"]
    assert reply.headers["Location"].endswith(f"/function/status/{again['job_id']}")
    # Straight after: the new job is pending or processing, so the document shows its first result.
    busy = gateway.request("POST", f"/function/documents/{document}/reprocess")
    assert busy.status == 409 and busy.json()["error"]["code"] == "document_busy"
    listed = gateway.request("GET", "/function/list?limit=100").json()["items"]
    shown = next(item for item in listed if item["document_id"] == document)
    assert shown["job_id"] == first["job_id"] and shown["status"] == "completed"
    found = gateway.request("GET", "/function/list?q=zeugnis&limit=100").json()["items"]
    assert [item["job_id"] for item in found if item["document_id"] == document] == [first["job_id"]]

    done = gateway.wait_final(again["job_id"])
    assert done["status"] == "completed" and done["lang"] == "deu" and "urkunde" in done["text"].lower()
    described = gateway.request("GET", f"/function/documents/{document}").json()
    assert described["job_id"] == again["job_id"]
    assert [job["job_id"] for job in described["jobs"]] == [again["job_id"], first["job_id"]]
    listed = gateway.request("GET", "/function/list?limit=100").json()["items"]
    assert next(item for item in listed if item["document_id"] == document)["job_id"] == again["job_id"]
    # Both results hold the word; a search finds the document once, by the result it shows.
    found = gateway.request("GET", "/function/list?q=zeugnis&limit=100").json()
    assert [item["job_id"] for item in found["items"] if item["document_id"] == document] == [again["job_id"]]
    assert gateway.status(first["job_id"]).json()["text"] == first["text"]  # the earlier result stays readable
    bad = gateway.request("POST", f"/function/documents/{document}/reprocess?lang=xx!")
    assert bad.status == 400 and bad.json()["error"]["code"] == "invalid_language"


def test_drops_belong_to_their_key_folder_or_to_inbox_owner(gateway: Gateway, admin: Gateway, settings: Settings,
                                                           s3: Any, stack: Any) -> None:
    """inbox/<key id>/ is that key's; a drop outside any key's folder is INBOX_OWNER's; a dead key's folder is refused."""
    data = image_bytes(["DROPPED for an owner"])
    mine = f"{settings.inbox_prefix}{gateway.key_id}/{uuid.uuid4().hex[:8]}.png"
    loose = f"{settings.inbox_prefix}{uuid.uuid4().hex[:8]}.png"
    nobody = f"{settings.inbox_prefix}0123456789ab/{uuid.uuid4().hex[:8]}.png"
    for key in (mine, loose, nobody):
        s3.put_object(settings.s3_bucket, key, io.BytesIO(data), len(data), content_type="image/png")

    def job_of(key: str) -> str | None:
        with session_scope(settings) as session:
            return session.execute(select(Job.id).join(Document, Document.job_id == Job.id)
                                   .where(Document.object_key == key)).scalar_one_or_none()

    own_job = wait_until(lambda: job_of(mine), 60, what="the drop in the key's folder")
    assert gateway.wait_final(own_job)["owner_id"] == gateway.key_id
    loose_job = wait_until(lambda: job_of(loose), 60, what="the loose drop")
    assert gateway.status(loose_job).status == 404
    assert admin.wait_final(loose_job)["owner_id"] == settings.inbox_owner

    def refused() -> bool:
        logs = Path(stack.state_dir).rglob("ocr-process*.log")
        return any(nobody in line and "drop_owner_unknown" in line for log in logs for line in log.read_text().splitlines())

    wait_until(refused, 60, what="the drop in an unknown key's folder to be refused")
    assert job_of(nobody) is None


def test_no_key_token_or_hash_ever_reaches_a_log_or_an_error_body(stack: Any, settings: Settings) -> None:
    """Good, bad, revoked and misplaced keys, then a grep of every log of the stack for any of their parts."""
    created = apikeys.create(settings, "log-test")
    token, secret = created.token, created.token.split("_", 2)[2]
    client = Gateway(stack.gateway_url, api_key=token)
    bodies = [
        client.upload(image_bytes(["LOG check"]), "log.png").body,
        client.request("GET", "/function/list").body,
        client.request("GET", f"/function/list?api_key={token}").body,
        Gateway(stack.gateway_url, api_key=token[:-1] + "A").request("GET", "/function/list").body,
    ]
    apikeys.revoke(settings, created.info.id)
    bodies.append(client.request("GET", "/function/list").body)
    secrets = [token, secret, hashlib.sha256(secret.encode()).hexdigest(), settings.internal_token]
    for body in bodies:
        assert not any(s.encode() in body for s in secrets)
    logs = [p for p in Path(stack.state_dir).rglob("*.log") if p.is_file()]
    assert any(p.name.startswith("list") for p in logs), logs
    for log_file in logs:
        content = log_file.read_text(errors="replace")
        for s in secrets:
            assert s not in content, f"{log_file.name} holds a secret"


def test_an_admin_may_delete_another_keys_document(gateway: Gateway, admin: Gateway) -> None:
    """The owner or an admin deletes; the admin's delete leaves the owner with a 404."""
    done = _completed(gateway, ["ADMIN removes this"], "admin.png")
    assert admin.request("DELETE", f"/function/documents/{done['document_id']}").status == 204
    assert gateway.status(done["job_id"]).status == 404


def test_retention_deletes_only_documents_older_than_retention_days(gateway: Gateway, settings: Settings,
                                                                   s3: Any, stack: Any) -> None:
    """A document older than RETENTION_DAYS goes with all its traces; a newer one stays; the stack runs the job."""
    old = _completed(gateway, ["OLD enough to expire"], "old.png")
    new = _completed(gateway, ["NEW enough to stay"], "new.png")
    with session_scope(settings) as session:
        document = session.get(Document, old["document_id"])
        assert document is not None
        key = document.object_key
        document.created_at = utcnow() - timedelta(days=31)
    expired = _cli(stack, "retention", extra_env={"RETENTION_DAYS": "30"})
    assert expired.returncode == 0, expired.stderr
    events = [json.loads(line) for line in expired.stderr.splitlines()]  # every line a JSON record
    assert any(e["event"] == "retention.expired" and e["removed"] >= 1 for e in events), events
    assert _traces(settings, s3, old["document_id"], [old["job_id"]], [key]) == []
    assert gateway.status(new["job_id"]).json()["status"] == "completed"
    off = [json.loads(line) for line in _cli(stack, "retention").stderr.splitlines()]
    assert any(e["event"] == "retention.expired" and e["enabled"] is False for e in off)  # RETENTION_DAYS=0, the default
    assert stack.status()["retention"]  # the scheduled run the local stack starts
