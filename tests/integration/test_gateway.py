"""The local gateway on its own: proxying, the durable async queue with retries and dead letters, callbacks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocrstack.services import Redis, free_port, port_open
from tests.conftest import REPO_ROOT
from tests.support import receiver, Gateway, wait_until

pytestmark = pytest.mark.integration

# Small, so the 413 test needs no large upload; the binary-body test stays well below it.
MAX_BODY = 1024 * 1024
# How long a followed /system/logs request lasts here (300 s by default).
FOLLOW_SECONDS = 4

# Tiny functions that make the gateway's behaviour visible: an echo, one that fails N times, one that always fails.
HANDLERS = {
    "echo": """
        import datetime, hashlib, json, os, sys, flask
        def handle(request):
            body = request.get_data()
            marker = request.headers.get("X-Log-Marker")
            if marker:  # a JSON line with its timestamp, as the project's functions log, then a plain one
                stamp = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
                print(json.dumps({"event": "echo.called", "marker": marker, "timestamp": stamp}), file=sys.stderr)
                print(f"plain line after {marker}", file=sys.stderr, flush=True)
            return flask.jsonify(method=request.method, path=request.path, query=request.query_string.decode(),
                                 sha256=hashlib.sha256(body).hexdigest(), size=len(body),
                                 call_id=request.headers.get("X-Call-Id"),
                                 forwarded_for=request.headers.get("X-Forwarded-For"),
                                 greeting=os.environ.get("GREETING"), ocr_dpi=os.environ.get("OCR_DPI"))
    """,
    "flaky": """
        import os, pathlib, flask
        def handle(request):
            counter = pathlib.Path(os.environ["COUNTER_DIR"]) / (request.headers.get("X-Call-Id") or "none")
            calls = int(counter.read_text()) + 1 if counter.exists() else 1
            counter.write_text(str(calls))
            if calls <= int(os.environ.get("FAILURES", "2")):
                return ("not yet", 500)
            return flask.jsonify(calls=calls, body=request.get_data(as_text=True))
    """,
    "busy": """
        import os, pathlib, flask
        def handle(request):
            counter = pathlib.Path(os.environ["COUNTER_DIR"]) / (request.headers.get("X-Call-Id") or "none")
            calls = int(counter.read_text()) + 1 if counter.exists() else 1
            counter.write_text(str(calls))
            if calls <= 5:
                return ("held elsewhere", 409, {"Retry-After": "0"})
            return flask.jsonify(calls=calls)
    """,
    "always500": """
        def handle(request):
            return ("broken", 500)
    """,
    "slow": """
        import time
        def handle(request):
            time.sleep(3)
            return "late"
    """,
    "refuses": """
        import os, pathlib
        def handle(request):
            counter = pathlib.Path(os.environ["COUNTER_DIR"]) / (request.headers.get("X-Call-Id") or "none")
            counter.write_text(str(int(counter.read_text()) + 1 if counter.exists() else 1))
            return ("malformed event", 400)
    """,
    "sleepy": """
        import os, pathlib, time, flask
        def handle(request):
            counter = pathlib.Path(os.environ["COUNTER_DIR"]) / (request.headers.get("X-Call-Id") or "none")
            counter.write_text(str(int(counter.read_text()) + 1 if counter.exists() else 1))
            time.sleep(float(request.get_data() or b"0"))
            return flask.jsonify(ok=True)
    """,
}
# Short, so a test can watch an abandoned invocation being taken over; calls longer than it are touched.
RECLAIM_IDLE = 2
# OpenFaaS-style exec_timeout per function: `slow` sleeps 3 s against a 1 s limit.
EXEC_TIMEOUTS = {"slow": "1s"}
# What the stack file sets for echo beyond that: a deployment may resend it, not change it (policy.py).
ECHO_ENV = {"GREETING": "hello", "RATE_LIMIT_CAPACITY": "5"}


class GatewayUnderTest:
    """A gateway process over the test functions, restartable with other settings."""

    def __init__(self, root: Path, redis_url: str) -> None:
        self.root = root
        self.redis_url = redis_url
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = Gateway(f"http://127.0.0.1:{self.port}")

    def start(self, queue_workers: int = 2, extra_args: tuple[str, ...] = ()) -> None:
        with (self.root / "gateway.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ocrstack.gateway", "--host", "127.0.0.1", "--port", str(self.port),
                 "--redis-url", self.redis_url, "--stack", str(self.root / "stack.yml"),
                 "--state-dir", str(self.root / "state"), "--queue-workers", str(queue_workers),
                 "--queue-max-attempts", "3", "--queue-backoff-base", "0.2",
                 "--max-body-bytes", str(MAX_BODY), "--logs-follow-timeout", str(FOLLOW_SECONDS),
                 "--queue-reclaim-idle", str(RECLAIM_IDLE), "--callback-allowed-hosts", "127.0.0.1", *extra_args],
                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
            )
        wait_until(lambda: self.client.request("GET", "/healthz").status == 200 if port_open(self.port) else False,
                   60, what="the test gateway")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = Redis(tmp_path_factory.mktemp("gateway-redis"), free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def write_test_stack(root: Path) -> None:
    """stack.yml and one handler folder per fake function, with a shared folder for call counters."""
    counters = root / "counters"
    counters.mkdir(exist_ok=True)
    functions = {}
    for name, source in HANDLERS.items():
        (root / name).mkdir(exist_ok=True)
        (root / name / "handler.py").write_text(textwrap.dedent(source))
        environment = {"COUNTER_DIR": str(counters), "exec_timeout": EXEC_TIMEOUTS.get(name, "20s")}
        if name == "echo":
            environment.update(ECHO_ENV)
        functions[name] = {"handler": f"./{name}", "image": f"test/{name}:1", "environment": environment}
    (root / "stack.yml").write_text(json.dumps({"version": 1.0, "functions": functions}))


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[GatewayUnderTest]:
    root = tmp_path_factory.mktemp("gateway")
    write_test_stack(root)
    gateway = GatewayUnderTest(root, redis_url)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


def test_binary_body_query_and_path_reach_the_function_unchanged(gw: GatewayUnderTest) -> None:
    """Bytes that are not UTF-8, the query string and the sub-path arrive as sent."""
    import hashlib

    body = bytes(range(256)) * 300
    reply = gw.client.request("POST", "/function/echo/a/b?x=1&y=two", body=body,
                              headers={"Content-Type": "text/plain"})
    assert reply.status == 200
    seen = reply.json()
    assert seen["sha256"] == hashlib.sha256(body).hexdigest() and seen["size"] == len(body)
    assert seen["path"] == "/a/b" and seen["query"] == "x=1&y=two"
    assert seen["forwarded_for"] == "127.0.0.1" and seen["call_id"] == reply.headers["X-Call-Id"]


def test_function_past_its_exec_timeout_is_504_naming_the_limit(gw: GatewayUnderTest) -> None:
    """A function slower than its exec_timeout ("1s") answers 504 function_timeout, naming the limit."""
    reply = gw.client.request("GET", "/function/slow")
    assert reply.status == 504
    error = reply.json()["error"]
    assert error["code"] == "function_timeout" and "1 s" in error["message"]


def test_dotted_name_is_split_on_the_last_dot(gw: GatewayUnderTest) -> None:
    """faas-cli invokes `name.namespace`; the gateway routes it to `name`."""
    assert gw.client.request("GET", "/function/echo.openfaas-fn").status == 200


def test_unknown_function_is_404_json(gw: GatewayUnderTest) -> None:
    """An unknown function answers 404 with a JSON error code, sync and async."""
    for path in ("/function/nope", "/async-function/nope"):
        reply = gw.client.request("POST", path, body=b"x")
        assert reply.status == 404 and reply.json()["error"]["code"] == "function_not_found"


def test_async_invocation_is_accepted_then_run(gw: GatewayUnderTest) -> None:
    """An async call answers 202 with X-Call-Id at once; the function runs soon after."""
    reply = gw.client.request("POST", "/async-function/flaky", body=b"hello",
                              headers={"X-Call-Id": "async-ok"})
    assert reply.status == 202 and reply.headers["X-Call-Id"] == "async-ok"
    counter = gw.root / "counters" / "async-ok"
    wait_until(lambda: counter.exists() and int(counter.read_text()) == 3, 20, what="retries to succeed")


def test_failures_are_retried_with_backoff_until_success(gw: GatewayUnderTest) -> None:
    """A function failing twice is called a third time and then left alone (acknowledged)."""
    gw.client.request("POST", "/async-function/flaky", body=b"x", headers={"X-Call-Id": "retry-me"})
    counter = gw.root / "counters" / "retry-me"
    wait_until(lambda: counter.exists() and counter.read_text() == "3", 20, what="the third call")
    time.sleep(1.0)
    assert counter.read_text() == "3"
    assert gw.client.request("GET", "/system/queue").json()["queued"] == 0


def test_conflict_with_retry_after_waits_without_spending_attempts(gw: GatewayUnderTest) -> None:
    """409 + Retry-After (job held by another worker) is retried as told, never dead-lettered for it."""
    gw.client.request("POST", "/async-function/busy", body=b"x", headers={"X-Call-Id": "busy-1"})
    counter = gw.root / "counters" / "busy-1"
    wait_until(lambda: counter.exists() and counter.read_text() == "6", 20, what="the sixth call")
    assert not [d for d in gw.client.request("GET", "/system/queue/dead").json() if d["call_id"] == "busy-1"]


def test_exhausted_invocations_are_dead_lettered_and_replayable(gw: GatewayUnderTest) -> None:
    """After max attempts an invocation is listed in the dead letters, and replay queues it again."""
    gw.client.request("POST", "/async-function/always500", body=b"poison", headers={"X-Call-Id": "poison-1"})

    def dead() -> list[dict[str, Any]]:
        return [d for d in gw.client.request("GET", "/system/queue/dead").json() if d["call_id"] == "poison-1"]

    entry = wait_until(dead, 20, what="the dead letter")[0]
    assert entry["attempts"] == 3 and entry["last_status"] == 500 and entry["function"] == "always500"
    assert gw.client.request("POST", f"/system/queue/dead/{entry['id']}/replay").status == 202
    wait_until(lambda: dead() and dead()[0]["id"] != entry["id"], 20, what="the replayed call to fail again")
    assert gw.client.request("POST", "/system/queue/dead/0-1/replay").status == 404


def test_accepted_invocation_survives_a_gateway_restart(gw: GatewayUnderTest) -> None:
    """An invocation accepted while no worker ran is executed exactly once after the gateway restarts."""
    gw.stop()
    gw.start(queue_workers=0)
    try:
        assert gw.client.request("POST", "/async-function/flaky", body=b"x",
                                 headers={"X-Call-Id": "after-restart"}).status == 202
        time.sleep(0.5)
        assert not (gw.root / "counters" / "after-restart").exists()
    finally:
        gw.stop()
        gw.start()
    counter = gw.root / "counters" / "after-restart"
    wait_until(lambda: counter.exists() and counter.read_text() == "3", 20, what="the queued call to run")
    time.sleep(1.0)
    assert counter.read_text() == "3"


def test_callback_url_receives_the_result(gw: GatewayUnderTest) -> None:
    """With X-Callback-Url the function's answer is posted there, with the call id and status."""
    with receiver() as (url, received):
        gw.client.request("POST", "/async-function/echo", body=b"call me back", headers={
            "X-Callback-Url": f"{url}/done", "X-Call-Id": "cb-1"})
        posted = wait_until(lambda: received[0] if received else None, 20, what="the callback")
    headers, body = posted.headers, posted.body
    assert headers["X-Call-Id"] == "cb-1" and headers["X-Function-Status"] == "200"
    assert headers["X-Function-Name"] == "echo"
    assert json.loads(body)["size"] == len(b"call me back")


def test_system_info_and_functions_have_what_faas_cli_reads(gw: GatewayUnderTest) -> None:
    """/system/info has provider.version and version; /system/functions lists the deployed functions."""
    info = gw.client.request("GET", "/system/info").json()
    assert info["provider"]["version"]["release"] and info["version"]["sha"]
    names = {fn["name"] for fn in gw.client.request("GET", "/system/functions").json()}
    assert names == set(HANDLERS)
    assert gw.client.request("GET", "/system/function/echo").json()["availableReplicas"] == 1


def test_metrics_count_invocations_by_function_and_code(gw: GatewayUnderTest) -> None:
    """/metrics exposes OpenFaaS's gateway_function_invocation_total with function and code labels."""
    gw.client.request("GET", "/function/echo")
    text = gw.client.request("GET", "/metrics").body.decode()
    assert 'gateway_function_invocation_total{code="200",function_name="echo"}' in text
    assert 'gateway_functions_seconds_bucket{code="200",function_name="echo",le="0.005"}' in text
    assert 'gateway_functions_seconds_bucket{code="200",function_name="echo",le="+Inf"}' in text
    for name in HANDLERS:
        assert f'gateway_service_count{{function_name="{name}"}} 1.0' in text


def test_a_client_that_hangs_up_is_counted_as_closed_not_as_a_502(gw: GatewayUnderTest) -> None:
    """A client that closes its connection before a sync call's answer is counted with code 499, not 502."""
    with socket.create_connection(("127.0.0.1", gw.port)) as conn:
        conn.sendall(b"POST /function/sleepy HTTP/1.1\r\nHost: x\r\nX-Call-Id: hangs-up\r\n"
                     b"Content-Length: 1\r\n\r\n2")
        wait_until(lambda: (gw.root / "counters" / "hangs-up").exists(), 10, what="the call to reach sleepy")
    def counted() -> str | None:
        text = gw.client.request("GET", "/metrics").body.decode()
        return text if 'code="499",function_name="sleepy"' in text else None
    text = wait_until(counted, 10, what="the hang-up to be counted")
    assert 'gateway_function_invocation_total{code="502",function_name="sleepy"}' not in text


def test_a_function_that_dies_is_restarted(gw: GatewayUnderTest) -> None:
    """If a function's process exits, the gateway starts it again and calls succeed."""
    functions = gw.client.request("GET", "/system/functions").json()
    assert functions
    import signal

    out = subprocess.run(["pgrep", "-f", f"{gw.root}/echo/handler.py"], capture_output=True, text=True)
    pids = [int(p) for p in out.stdout.split()]
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: gw.client.request("GET", "/function/echo").status == 200, 30, what="echo to be back")


def test_async_body_over_the_limit_is_413_and_only_post_is_queued(gw: GatewayUnderTest) -> None:
    """An async body above --max-body-bytes is refused with 413 naming the limit; GET is 405."""
    reply = gw.client.request("POST", "/async-function/echo", body=b"x" * (MAX_BODY + 1))
    assert reply.status == 413
    error = reply.json()["error"]
    assert error["code"] == "payload_too_large" and str(MAX_BODY) in error["message"]
    assert gw.client.request("GET", "/async-function/echo").status == 405


def test_system_routes_need_basic_auth_and_a_lost_redis_is_503(tmp_path: Path) -> None:
    """With basic auth on, /system/* needs it (functions do not); without Redis an async call is 503."""
    import base64

    redis = Redis(tmp_path / "redis", free_port())
    redis.start()
    write_test_stack(tmp_path)
    (tmp_path / "password").write_text("s3cret\n")
    (tmp_path / "password").chmod(0o600)
    second = GatewayUnderTest(tmp_path, redis.url)
    try:
        second.start(queue_workers=0, extra_args=("--basic-auth-user", "admin",
                                                  "--basic-auth-password-file", str(tmp_path / "password")))
        assert second.client.request("GET", "/system/functions").status == 401
        good = "Basic " + base64.b64encode(b"admin:s3cret").decode()
        assert second.client.request("GET", "/system/functions", headers={"Authorization": good}).status == 200
        # faas-cli without a login sends an empty bearer token to function routes.
        assert second.client.request("GET", "/function/echo", headers={"Authorization": "Bearer "}).status == 200
        redis.stop()
        reply = second.client.request("POST", "/async-function/echo", body=b"x")
        assert reply.status == 503 and reply.json()["error"]["code"] == "queue_unavailable"
    finally:
        second.stop()
        redis.stop()


def test_swagger_ui_and_the_openapi_document_are_served(gw: GatewayUnderTest) -> None:
    """/docs is a Swagger UI page over /openapi.yaml, with its assets served locally (no CDN)."""
    import yaml

    page = gw.client.request("GET", "/docs")
    assert page.status == 200 and b"/docs/static/swagger-ui-bundle.js" in page.body
    assert gw.client.request("GET", "/docs/static/swagger-ui-bundle.js").status == 200
    document = yaml.safe_load(gw.client.request("GET", "/openapi.yaml").body)
    assert document["openapi"].startswith("3.") and "/function/upload" in document["paths"]


def test_deploy_update_and_remove_as_faas_cli_does(gw: GatewayUnderTest) -> None:
    """PUT answers 404 for an undeployed function, POST deploys it with its env, DELETE removes it."""
    deployment: dict[str, Any] = {"service": "echo", "image": "test/echo:1", "envVars": {"OCR_DPI": "150", **ECHO_ENV},
                                  "labels": {"com.openfaas.scale.min": "1"}}
    assert gw.client.request("DELETE", "/system/functions", json={"functionName": "echo"}).status == 202
    assert gw.client.request("GET", "/function/echo").status == 404
    assert gw.client.request("PUT", "/system/functions", json=deployment).status == 404
    assert gw.client.request("POST", "/system/functions", json=deployment).status == 202
    seen = gw.client.request("GET", "/function/echo").json()
    assert seen["ocr_dpi"] == "150" and seen["greeting"] == "hello"
    described = gw.client.request("GET", "/system/function/echo").json()
    assert described["image"] == "test/echo:1" and described["labels"] == deployment["labels"]

    # A tunable setting may change; what the request leaves out keeps the stack file's value.
    update = {**deployment, "envVars": {"OCR_DPI": "200"}}
    assert gw.client.request("PUT", "/system/functions", json=update).status == 202
    seen = gw.client.request("GET", "/function/echo").json()
    assert seen["ocr_dpi"] == "200" and seen["greeting"] == "hello"
    unknown = gw.client.request("POST", "/system/functions", json={"service": "nowhere"})
    assert unknown.status == 400 and unknown.json()["error"]["code"] == "function_unknown"
    assert gw.client.request("DELETE", "/system/functions", json={"functionName": "nowhere"}).status == 404


@pytest.mark.parametrize("change, code", [
    # Code from anywhere but the stack file: functions/<name>/ of the checkout, a path, another namespace.
    ({"service": "upload"}, "function_unknown"),
    ({"service": "../../tmp/evil"}, "bad_request"),
    ({"service": "echo.other-namespace"}, "namespace_unknown"),
    ({"namespace": "kube-system"}, "namespace_unknown"),
    ({"image": "registry.example.com/evil:1"}, "image_not_allowed"),
    ({"envProcess": "python /tmp/evil.py"}, "fprocess_not_allowed"),
    # Variables that would load other code, or turn off a limit or the auth, or point away from the stack.
    ({"envVars": {"PYTHONPATH": "/tmp/evil"}}, "env_not_allowed"),
    ({"envVars": {"GUNICORN_CMD_ARGS": "--config python:evil"}}, "env_not_allowed"),
    ({"envVars": {"LD_PRELOAD": "/tmp/evil.so"}}, "env_not_allowed"),
    ({"envVars": {"RATE_LIMIT_CAPACITY": "0"}}, "env_not_allowed"),
    ({"envVars": {"AUTH": "off"}}, "env_not_allowed"),
    ({"envVars": {"GREETING": "changed"}}, "env_not_allowed"),
    ({"envVars": {"SECRETS_DIR": "/tmp"}}, "env_not_allowed"),
    ({"envVars": {"OCR_DPI": 300}}, "bad_request"),
    ({"labels": ["not", "a", "map"]}, "bad_request"),
])
def test_a_deployment_runs_only_the_stack_files_code_and_keeps_its_protected_settings(
        gw: GatewayUnderTest, change: dict[str, Any], code: str) -> None:
    """Refused with 400 and a JSON code naming why; the running function is left as it was."""
    before = gw.client.request("GET", "/system/function/echo").json()
    deployment = {"service": "echo", "image": "test/echo:1", "envVars": dict(ECHO_ENV), **change}
    for method in ("PUT", "POST"):
        reply = gw.client.request(method, "/system/functions", json=deployment)
        assert reply.status == 400 and reply.json()["error"]["code"] == code, reply.body
    after = gw.client.request("GET", "/system/function/echo").json()
    assert after["envVars"] == before["envVars"] and after["availableReplicas"] == 1


def test_a_function_added_to_the_stack_file_deploys_without_a_restart(gw: GatewayUnderTest) -> None:
    """The stack file is read again for every deployment: a new function in it can be deployed and removed."""
    original = (gw.root / "stack.yml").read_text()
    stack = json.loads(original)
    (gw.root / "late").mkdir(exist_ok=True)
    (gw.root / "late" / "handler.py").write_text("def handle(request):\n    return 'late'\n")
    stack["functions"]["late"] = {"handler": "./late", "image": "test/late:1"}
    (gw.root / "stack.yml").write_text(json.dumps(stack))
    try:
        assert gw.client.request("PUT", "/system/functions", json={"service": "late"}).status == 404
        late = {"service": "late", "image": "test/late:1"}
        assert gw.client.request("POST", "/system/functions", json=late).status == 202
        assert gw.client.request("GET", "/function/late").body == b"late"
    finally:
        gw.client.request("DELETE", "/system/functions", json={"functionName": "late"})
        (gw.root / "stack.yml").write_text(original)
    assert gw.client.request("GET", "/function/late").status == 404
    assert gw.client.request("POST", "/system/functions", json={"service": "late"}).json()["error"]["code"] == \
        "function_unknown"


def log_records(gw: GatewayUnderTest, query: str) -> list[dict[str, Any]]:
    reply = gw.client.request("GET", f"/system/logs?{query}")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("application/x-ndjson"), reply.body
    return [json.loads(line) for line in reply.body.decode().splitlines()]


def test_logs_api_gives_records_with_name_instance_timestamp_and_text(gw: GatewayUnderTest) -> None:
    """/system/logs is OpenFaaS's log API: NDJSON records, `since` and `tail` applied, the instance per start."""
    marker = f"m-{time.time_ns()}"
    gw.client.request("POST", "/function/echo", body=b"x", headers={"X-Log-Marker": marker})
    records = wait_until(lambda: (lambda r: r if any(f"plain line after {marker}" == x["text"] for x in r) else None)(
        log_records(gw, "name=echo")), 10, what="echo's lines")
    assert set(records[-1]) == {"name", "namespace", "instance", "timestamp", "text"}
    mine = [r for r in records if marker in r["text"]]
    assert [json.loads(mine[0]["text"])["marker"], mine[1]["text"]] == [marker, f"plain line after {marker}"]
    # The plain line has no time of its own: it takes the JSON line's.
    assert mine[0]["timestamp"] == mine[1]["timestamp"] == json.loads(mine[0]["text"])["timestamp"]
    assert all(r["name"] == "echo" and r["namespace"] == "openfaas-fn" for r in records)
    assert mine[0]["instance"].startswith("echo-")
    assert not any('"function.started"' in r["text"] for r in records)  # the provider's markers are no records

    assert log_records(gw, "name=echo&tail=2") == records[-2:]
    since = mine[0]["timestamp"]
    later = log_records(gw, f"name=echo&since={since}")
    assert later and all(r["timestamp"] >= since for r in later) and later[-2:] == records[-2:]
    assert log_records(gw, "name=echo&since=2999-01-01T00:00:00Z") == []
    assert log_records(gw, f"name=echo&instance={mine[0]['instance']}&tail=1") == records[-1:]
    assert log_records(gw, "name=echo&instance=nobody") == []


def test_followed_logs_stream_new_lines_until_the_bound(gw: GatewayUnderTest, tmp_path: Path) -> None:
    """follow=true keeps the answer open and sends lines as they are written, until --logs-follow-timeout."""
    import urllib3

    marker = f"f-{time.time_ns()}"
    http = urllib3.PoolManager()
    started = time.monotonic()
    reply = http.request("GET", f"{gw.client.base}/system/logs?name=echo&tail=1&follow=true", preload_content=False,
                         timeout=urllib3.Timeout(connect=5, read=20))
    try:
        assert reply.status == 200
        time.sleep(0.5)
        gw.client.request("POST", "/function/echo", body=b"x", headers={"X-Log-Marker": marker})
        seen = b""
        for chunk in reply.stream(1024):  # ends when the gateway ends the answer
            seen += chunk
    finally:
        reply.release_conn()
    lines = [json.loads(line)["text"] for line in seen.decode().splitlines()]
    assert f"plain line after {marker}" in lines and len(lines) == 3  # the tail, then the two new lines
    assert FOLLOW_SECONDS - 0.5 < time.monotonic() - started < FOLLOW_SECONDS + 5


def test_logs_api_refuses_what_faas_provider_refuses(gw: GatewayUnderTest) -> None:
    """Unparsable tail or since: 422 (as faas-provider); a name that is no function name: 400; unknown: 404."""
    assert gw.client.request("GET", "/system/logs?name=echo&tail=many").status == 422
    assert gw.client.request("GET", "/system/logs?name=echo&since=yesterday").status == 422
    assert gw.client.request("GET", "/system/logs?name=../../../etc/passwd").status == 400
    assert gw.client.request("GET", "/system/logs").status == 400
    assert gw.client.request("GET", "/system/logs?name=nowhere").status == 404
    assert gw.client.request("GET", "/system/logs?name=echo&namespace=other").status == 404


def test_a_password_file_others_may_read_is_refused(tmp_path: Path, redis_url: str) -> None:
    """The gateway will not start on a basic auth password file with group or other permissions."""
    write_test_stack(tmp_path)
    (tmp_path / "password").write_text("s3cret\n")
    (tmp_path / "password").chmod(0o644)
    done = subprocess.run(
        [sys.executable, "-m", "ocrstack.gateway", "--port", str(free_port()), "--redis-url", redis_url,
         "--stack", str(tmp_path / "stack.yml"), "--state-dir", str(tmp_path / "state"),
         "--basic-auth-user", "admin", "--basic-auth-password-file", str(tmp_path / "password")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "chmod 600" in done.stderr


def test_every_tunable_setting_is_one_the_functions_read() -> None:
    """policy.TUNABLE names settings of common/config.py (or the watchdog's timeouts), none of the access ones."""
    from common.config import load_settings
    from common.errors import ConfigError
    from ocrstack.gateway import policy
    from tests.support import RecordingMapping

    env = RecordingMapping({})
    with pytest.raises(ConfigError):  # secrets missing: every name is looked up before the error is raised
        load_settings(env)
    settings = policy.TUNABLE - {"read_timeout", "write_timeout", "exec_timeout"}
    assert settings <= env.read, sorted(settings - env.read)
    assert not settings & {"AUTH", "AUTH_CACHE_SECONDS", "INTERNAL_TOKEN", "SECRETS_DIR", "TRUSTED_PROXIES",
                           "INBOX_OWNER", "GATEWAY_URL", "PUBLIC_URL", "LOG_LEVEL"}
    assert not any(name.startswith(("RATE_LIMIT_", "MYSQL_", "S3_", "REDIS_URL")) for name in settings)


def test_a_function_refusing_the_request_is_dead_lettered_at_once(gw: GatewayUnderTest) -> None:
    """A 4xx other than 408/409/425/429 cannot change on a retry: one call, then the dead letters with its reason."""
    gw.client.request("POST", "/async-function/refuses", body=b"{", headers={"X-Call-Id": "refused-1"})

    def dead() -> list[dict[str, Any]]:
        return [d for d in gw.client.request("GET", "/system/queue/dead").json() if d["call_id"] == "refused-1"]

    entry = wait_until(dead, 10, what="the dead letter")[0]
    assert entry["attempts"] == 1 and entry["last_status"] == 400 and "malformed" in entry["last_error"]
    assert (gw.root / "counters" / "refused-1").read_text() == "1"


def test_an_abandoned_invocation_is_taken_over_after_the_reclaim_bound(gw: GatewayUnderTest, redis_url: str) -> None:
    """An entry a dead worker took (or whose acknowledgement was lost) runs after --queue-reclaim-idle, not 16 min."""
    import redis as redis_lib

    from ocrstack.gateway.queue import GROUP, STREAM, Invocation

    invocation = Invocation(function="sleepy", path="/", query="", method="POST", headers={"X-Call-Id": "orphan-1"},
                            body=b"0", call_id="orphan-1", callback_url=None)
    client = redis_lib.Redis.from_url(redis_url)
    with client.pipeline(transaction=True) as pipe:  # atomic: no live worker can read it first
        pipe.xadd(STREAM, {"payload": invocation.dumps()})
        pipe.xreadgroup(GROUP, "ghost-worker", {STREAM: ">"}, count=1)  # taken, never acknowledged
        taken = pipe.execute()[1]
    assert taken and taken[0][1][0][1][b"payload"] == invocation.dumps().encode()
    counter = gw.root / "counters" / "orphan-1"
    started = time.monotonic()
    wait_until(counter.exists, RECLAIM_IDLE + 15, what="the abandoned entry to be taken over")
    assert time.monotonic() - started >= RECLAIM_IDLE - 0.5


def test_a_call_longer_than_the_reclaim_bound_runs_once(gw: GatewayUnderTest) -> None:
    """A worker keeps touching the entry it runs, so a long call is never handed to a second worker."""
    gw.client.request("POST", "/async-function/sleepy", body=str(RECLAIM_IDLE * 3).encode(),
                      headers={"X-Call-Id": "long-1"})
    counter = gw.root / "counters" / "long-1"
    wait_until(counter.exists, 10, what="the call to start")
    time.sleep(RECLAIM_IDLE * 3 + 3)
    assert counter.read_text() == "1"


def test_a_client_cannot_choose_its_forwarded_address(gw: GatewayUnderTest) -> None:
    """X-Forwarded-For, Forwarded and X-Real-IP from a client are dropped; the function sees the address the gateway saw."""
    reply = gw.client.request("GET", "/function/echo", headers={
        "X-Forwarded-For": "6.6.6.6", "Forwarded": "for=6.6.6.6", "X-Real-IP": "6.6.6.6"})
    assert reply.json()["forwarded_for"] == "127.0.0.1"


@pytest.mark.parametrize("url", ["http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data",
                                 "ftp://example.org/x", "http://user:secret@example.org/", "not a url"])
def test_callback_urls_to_private_addresses_or_odd_schemes_are_refused(gw: GatewayUnderTest, url: str) -> None:
    """Only http(s) to public addresses, or to hosts the gateway allows (here 127.0.0.1): a 400 naming the rule."""
    reply = gw.client.request("POST", "/async-function/echo", body=b"x", headers={"X-Callback-Url": url})
    assert reply.status == 400 and reply.json()["error"]["code"] == "callback_refused"


def test_a_callback_redirect_is_not_followed(gw: GatewayUnderTest) -> None:
    """A receiver answering 302 gets its one POST; the gateway never goes where the redirect points."""
    with receiver(302, {"Location": "/elsewhere"}) as (url, received):
        gw.client.request("POST", "/async-function/echo", body=b"x", headers={
            "X-Callback-Url": f"{url}/first", "X-Call-Id": "redirect-1"})
        wait_until(lambda: received, 20, what="the callback")
        time.sleep(1.0)
    assert [posted.path for posted in received] == ["/first"]


def test_a_flood_in_the_default_lane_does_not_hold_up_the_uploads_lane(gw: GatewayUnderTest) -> None:
    """Workers take the lanes in turn: a call in `uploads` runs after at most one more call per worker, while
    most of a flood queued before it (as bucket drops in the default lane) still waits."""
    flood = [f"flood-{i}" for i in range(30)]
    for call_id in flood:
        gw.client.request("POST", "/async-function/sleepy", body=b"0.5", headers={"X-Call-Id": call_id})
    reply = gw.client.request("POST", "/async-function/sleepy", body=b"0",
                              headers={"X-Call-Id": "lane-upload-1", "X-Queue-Lane": "uploads"})
    assert reply.status == 202
    counters = gw.root / "counters"
    wait_until((counters / "lane-upload-1").exists, 20, what="the uploads lane's call")
    ran = sum((counters / call_id).exists() for call_id in flood)
    assert ran <= 6, f"{ran} of the flood ran before the uploads lane's call"
    stats = gw.client.request("GET", "/system/queue").json()
    assert set(stats["lanes"]) == {"default", "uploads", "chunks"}
    wait_until(lambda: all((counters / call_id).exists() for call_id in flood), 60, what="the flood to drain")


def test_an_unknown_lane_is_the_default_lane(gw: GatewayUnderTest) -> None:
    """A lane the gateway was not started with makes no new stream: the call waits in the default lane."""
    reply = gw.client.request("POST", "/async-function/sleepy", body=b"0",
                              headers={"X-Call-Id": "lane-unknown-1", "X-Queue-Lane": "mine-alone"})
    assert reply.status == 202
    wait_until((gw.root / "counters" / "lane-unknown-1").exists, 20, what="the call in the default lane")
    assert "mine-alone" not in gw.client.request("GET", "/system/queue").json()["lanes"]


def test_scaling_labels_run_replicas_that_share_the_queued_calls(gw: GatewayUnderTest) -> None:
    """com.openfaas.scale.min=2: two processes; two queued 2-second calls run side by side, one on each."""
    deployment = {"service": "sleepy", "image": "test/sleepy:1", "labels": {"com.openfaas.scale.min": "2"}}
    assert gw.client.request("PUT", "/system/functions", json=deployment).status == 202
    described = gw.client.request("GET", "/system/function/sleepy").json()
    assert (described["replicas"], described["availableReplicas"]) == (2, 2)
    for call_id in ("replica-a", "replica-b"):
        gw.client.request("POST", "/async-function/sleepy", body=b"2", headers={"X-Call-Id": call_id})
    counters = [gw.root / "counters" / call_id for call_id in ("replica-a", "replica-b")]
    wait_until(lambda: all(c.exists() for c in counters), 20, what="both calls to start")
    # Started together (each writes its counter first): one replica would have begun the second call only
    # after the first call's 2 s.
    first, second = sorted(c.stat().st_mtime for c in counters)
    assert second - first < 1.5, second - first
    single = {**deployment, "labels": {"com.openfaas.scale.min": "1"}}
    assert gw.client.request("PUT", "/system/functions", json=single).status == 202
    assert gw.client.request("GET", "/system/function/sleepy").json()["replicas"] == 1
