"""The local gateway on its own: proxying, the durable async queue with retries and dead letters, callbacks."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocrstack.services import Redis, free_port, port_open
from tests.conftest import REPO_ROOT
from tests.support import Gateway, wait_until

pytestmark = pytest.mark.integration

# Small, so the 413 test needs no large upload; the binary-body test stays well below it.
MAX_BODY = 1024 * 1024

# Tiny functions that make the gateway's behaviour visible: an echo, one that fails N times, one that always fails.
HANDLERS = {
    "echo": """
        import hashlib, json, os, flask
        def handle(request):
            body = request.get_data()
            return flask.jsonify(method=request.method, path=request.path, query=request.query_string.decode(),
                                 sha256=hashlib.sha256(body).hexdigest(), size=len(body),
                                 call_id=request.headers.get("X-Call-Id"),
                                 forwarded_for=request.headers.get("X-Forwarded-For"),
                                 greeting=os.environ.get("GREETING"))
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
}
# OpenFaaS-style exec_timeout per function: `slow` sleeps 3 s against a 1 s limit.
EXEC_TIMEOUTS = {"slow": "1s"}


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
                 "--max-body-bytes", str(MAX_BODY), *extra_args],
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
        functions[name] = {"handler": f"./{name}", "environment": environment}
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
    received: list[tuple[dict[str, str], bytes]] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        gw.client.request("POST", "/async-function/echo", body=b"call me back", headers={
            "X-Callback-Url": f"http://127.0.0.1:{server.server_port}/done", "X-Call-Id": "cb-1"})
        headers, body = wait_until(lambda: received[0] if received else None, 20, what="the callback")
    finally:
        server.shutdown()
        server.server_close()
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
    assert "gateway_functions_seconds_sum" in text and f"gateway_service_count {len(HANDLERS)}" in text


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
    deployment = {"service": "echo", "image": "example/echo:1", "envVars": {"GREETING": "hello"},
                  "labels": {"com.openfaas.scale.min": "1"}}
    assert gw.client.request("DELETE", "/system/functions", json={"functionName": "echo"}).status == 202
    assert gw.client.request("GET", "/function/echo").status == 404
    assert gw.client.request("PUT", "/system/functions", json=deployment).status == 404
    assert gw.client.request("POST", "/system/functions", json=deployment).status == 202
    assert gw.client.request("GET", "/function/echo").json()["greeting"] == "hello"
    described = gw.client.request("GET", "/system/function/echo").json()
    assert described["image"] == "example/echo:1" and described["labels"] == deployment["labels"]

    deployment["envVars"] = {"GREETING": "again"}
    assert gw.client.request("PUT", "/system/functions", json=deployment).status == 202
    assert gw.client.request("GET", "/function/echo").json()["greeting"] == "again"
    unknown = gw.client.request("POST", "/system/functions", json={"service": "nowhere"})
    assert unknown.status == 400 and unknown.json()["error"]["code"] == "function_unknown"
    assert gw.client.request("DELETE", "/system/functions", json={"functionName": "nowhere"}).status == 404
