"""The real faas-cli (the one local-stack/bootstrap provides) against the local gateway.

login, deploy -f stack.yml, list, describe, invoke (sync, GET, binary, async with a callback), remove, logs
(--since, --lines, following), build --shrinkwrap, and `new --lang python3-ocr` from the project's template
deployed and invoked. Each faas-cli runs with a HOME and config folder of its own, so the user's
~/.openfaas is never read or written, and always with --gateway, so a stack on :8080 is never touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.config import Settings
from ocrstack.services import Redis, free_port, openfaas_tool, port_open
from tests.conftest import REPO_ROOT
from tests.integration.conftest import new_key
from tests.support import receiver, Gateway, image_bytes, wait_until

pytestmark = pytest.mark.integration

STACK_FUNCTIONS = sorted(yaml.safe_load((REPO_ROOT / "stack.yml").read_text())["functions"])


class FaasCli:
    """faas-cli with a home of its own (its config, logins included, stays there) aimed at one gateway."""

    def __init__(self, home: Path, gateway: str, docker: Path | None = None) -> None:
        self.binary = openfaas_tool("faas-cli")  # no skip: the bootstrap provides it, in CI too
        self.home = home
        self.gateway = gateway.rstrip("/")
        # The folder whose `docker` faas-cli's build and up run (the container bootstrap's podman shim).
        self.docker = docker
        home.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        # No OPENFAAS_URL, OPENFAAS_PREFIX or CI from the caller's environment: they would change the gateway,
        # the images or the config folder.
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENFAAS_") and k != "CI"}
        env.update(HOME=str(self.home), OPENFAAS_CONFIG=str(self.home / ".openfaas"), NO_COLOR="1")
        if self.docker is not None:
            env["PATH"] = os.pathsep.join([str(self.docker), env.get("PATH", os.defpath)])
        return env

    def run(self, *args: str, cwd: Path = REPO_ROOT, input: bytes = b"", timeout: float = 120,
            ok: bool = True) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run([str(self.binary), *args], cwd=cwd, env=self.env(), input=input, capture_output=True,
                              timeout=timeout, check=False)
        if ok:
            assert done.returncode == 0, f"faas-cli {' '.join(args)}: {done.stdout!r} {done.stderr!r}"
        return done

    def at(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
        """A command with --gateway, for the commands that talk to one."""
        return self.run(*args, "--gateway", self.gateway, **kw)

    def login(self, password: str, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
        return self.at("login", "--username", "admin", "--password-stdin", input=password.encode(), ok=ok)

    def text(self, *args: str, **kw: Any) -> str:
        return self.at(*args, **kw).stdout.decode()


def output(done: subprocess.CompletedProcess[bytes]) -> str:
    return (done.stdout + done.stderr).decode(errors="replace")


def test_the_bootstrap_provides_faas_cli_and_fwatchdog() -> None:
    """Both OpenFaaS programs are there (PATH, else the bootstrap's build in the cache) and run."""
    version = subprocess.run([str(openfaas_tool("faas-cli")), "version", "--short-version"], capture_output=True,
                             text=True, timeout=30, check=True)
    assert re.fullmatch(r"\d+\.\d+\.\d+\s*", version.stdout), version.stdout
    watchdog = subprocess.run([str(openfaas_tool("fwatchdog")), "-version"], capture_output=True, text=True,
                              timeout=30, check=True)
    assert "Version:" in watchdog.stdout + watchdog.stderr


@pytest.fixture(scope="module")
def cli(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> FaasCli:
    """faas-cli logged in to the stack's gateway (user admin, the stack's password)."""
    logged_in = FaasCli(tmp_path_factory.mktemp("faas-cli-home"), stack.gateway_url)
    logged_in.login(stack.gateway_auth[1])
    return logged_in


def test_login_takes_the_right_password_and_refuses_a_wrong_one(stack: Any, tmp_path: Path) -> None:
    """Without a login /system/* is refused; a wrong password is refused by login itself; the right one is kept
    in the private config folder, and the next command uses it."""
    for private in (stack.state_dir / "credentials.json", stack.gateway.password_file):
        assert private.stat().st_mode & 0o777 == 0o600, private
    fresh = FaasCli(tmp_path / "home", stack.gateway_url)
    refused = fresh.at("list", ok=False)
    assert refused.returncode != 0 and "unauthorized" in output(refused).lower()

    wrong = fresh.login("not-the-password", ok=False)
    assert wrong.returncode != 0 and "username or password is incorrect" in output(wrong)
    config = tmp_path / "home" / ".openfaas" / "config.yml"
    assert not config.exists() or stack.gateway_url not in config.read_text()

    right = fresh.login(stack.gateway_auth[1])
    assert f"credentials saved for admin {stack.gateway_url}" in output(right)
    assert stack.gateway_url in config.read_text() and config.stat().st_mode & 0o077 == 0
    assert "upload" in fresh.text("list")


def test_deploy_the_stack_file_then_list_and_describe(cli: FaasCli, stack: Any, settings: Settings) -> None:
    """`faas-cli deploy -f stack.yml` (PUT, as each function exists) redeploys all five; list and describe show them."""
    deployed = cli.at("deploy", "-f", "stack.yml")
    assert output(deployed).count("Deployed. 202 Accepted.") == len(STACK_FUNCTIONS), output(deployed)
    listed = cli.text("list")
    rows = {line.split()[0]: line.split() for line in listed.splitlines()[1:] if line.strip()}
    assert set(rows) == set(STACK_FUNCTIONS), listed
    described = cli.text("describe", "upload")
    assert re.search(r"Name:\s+upload", described) and re.search(r"Status:\s+Ready", described), described
    assert re.search(r"Image:\s+ocr-pipeline/upload:latest", described), described
    # The functions answer as before, with their stack settings (the rate limit headers say upload's is on).
    reply = Gateway(stack.gateway_url, api_key=new_key(settings)).request("GET", "/function/list")
    assert reply.status == 200 and "RateLimit-Limit" in reply.headers


def test_a_deploy_cannot_turn_off_a_rate_limit_or_the_auth(cli: FaasCli, stack: Any) -> None:
    """`deploy -e` of a protected setting is refused by the gateway (400, named) and faas-cli fails."""
    for setting in ("RATE_LIMIT_CAPACITY=0", "AUTH=off", "PYTHONPATH=/tmp"):
        refused = cli.at("deploy", "-f", "stack.yml", "--filter", "upload", "-e", setting, ok=False)
        assert refused.returncode != 0 and "env_not_allowed" in output(refused), output(refused)
    assert re.search(r"Status:\s+Ready", cli.text("describe", "upload"))


def test_invoke_sync_binary_get_and_async_with_a_callback(cli: FaasCli, stack: Any, settings: Settings) -> None:
    """A PNG through `invoke upload` (API key in -H, raw body), a GET of list, then an async upload whose answer
    reaches a callback listener on 127.0.0.1; both documents are read."""
    key = new_key(settings)
    client = Gateway(stack.gateway_url, api_key=key)
    answer = cli.at("invoke", "upload", "--content-type", "image/png", "--query", "filename=cli.png",
                    "-H", f"X-Api-Key: {key}", input=image_bytes(["FAAS CLI invoke"]))
    job = json.loads(answer.stdout)
    assert job["status"] == "pending"
    assert "FAAS CLI" in client.wait_final(job["job_id"])["text"]

    listed = json.loads(cli.at("invoke", "list", "--method", "GET", "--query", "limit=5",
                               "-H", f"Authorization: Bearer {key}").stdout)
    assert job["document_id"] in json.dumps(listed)

    with receiver() as (url, received):
        submitted = cli.at("invoke", "upload", "--async", "--content-type", "image/png", "--query",
                           "filename=async.png", "-H", f"X-Api-Key: {key}",
                           "-H", f"X-Callback-Url: {url}/done", input=image_bytes(["ASYNC callback"]))
        assert "Function submitted asynchronously." in output(submitted)
        posted = wait_until(lambda: received[0] if received else None, 60, what="the callback")
    headers, body = posted.headers, posted.body
    assert headers["X-Function-Status"] == "202" and headers["X-Function-Name"] == "upload"
    assert "ASYNC" in client.wait_final(json.loads(body)["job_id"])["text"]


def test_remove_then_deploy_again(cli: FaasCli, stack: Any, settings: Settings, system: Gateway) -> None:
    """`faas-cli remove list` takes it off the gateway (404); deploying the stack file's list brings it back."""
    client = Gateway(stack.gateway_url, api_key=new_key(settings))
    try:
        cli.at("remove", "list")
        assert client.request("GET", "/function/list").status == 404
        assert "list" not in cli.text("list").split()
    finally:
        cli.at("deploy", "-f", "stack.yml", "--filter", "list")
    assert client.request("GET", "/function/list").status == 200


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_logs_with_lines_since_and_follow(cli: FaasCli, stack: Any, settings: Settings) -> None:
    """`faas-cli logs status` shows its JSON lines with name, instance and time; --lines, --since and
    --since-time select; the default (--tail) follows new lines until stopped."""
    client = Gateway(stack.gateway_url, api_key=new_key(settings))
    first = f"cli-logs-{uuid.uuid4().hex}"
    client.request("GET", f"/function/status/{uuid.uuid4()}", headers={"X-Request-Id": first})

    def shown(*args: str) -> list[dict[str, Any]]:
        return records(cli.text("logs", "status", "--tail=false", "--output", "json", *args, timeout=60))

    everything = wait_until(lambda: (lambda r: r if any(first in x["text"] for x in r) else None)(shown()),
                            20, what="status's log line")
    line = next(r for r in everything if first in r["text"])
    assert line["name"] == "status" and line["instance"].startswith("status-")
    assert json.loads(line["text"])["request_id"] == first
    assert shown("--lines", "1") == everything[-1:]
    assert any(first in r["text"] for r in shown("--since", "2m"))
    assert shown("--since-time", "2999-01-01T00:00:00Z") == []
    plain = cli.text("logs", "status", "--tail=false", "--lines", "3")
    assert len(plain.splitlines()) == 3 and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", plain)

    # Following: started first, then a new line is written, and faas-cli prints it as it comes.
    later = f"cli-follow-{uuid.uuid4().hex}"
    follower = subprocess.Popen([str(cli.binary), "logs", "status", "--gateway", cli.gateway, "--lines", "1"],
                                env=cli.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    seen: list[str] = []

    def read() -> None:
        assert follower.stdout is not None
        for raw in follower.stdout:
            seen.append(raw.decode(errors="replace"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_until(lambda: seen, 20, what="the followed log to start")
        client.request("GET", f"/function/status/{uuid.uuid4()}", headers={"X-Request-Id": later})
        wait_until(lambda: any(later in s for s in seen), 20, what="the new line in the followed log")
        assert follower.poll() is None  # still following
    finally:
        follower.terminate()
        follower.wait(timeout=10)
        reader.join(timeout=10)


def copy_project(destination: Path) -> Path:
    """What faas-cli build reads from a checkout: stack.yml, template/, the handlers and common/."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")
    destination.mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "stack.yml", destination / "stack.yml")
    for folder in ("template", "functions", "common"):
        shutil.copytree(REPO_ROOT / folder, destination / folder, ignore=ignore)
    return destination


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_build_shrinkwrap_makes_a_context_per_function_with_common(tmp_path: Path) -> None:
    """`faas-cli build --shrinkwrap` (no Docker) lays out build/<fn>/: the template, the handler in function/,
    and all of common/ in function/common/."""
    project = copy_project(tmp_path / "project")
    FaasCli(tmp_path / "home", "http://127.0.0.1:1").run("build", "-f", "stack.yml", "--shrinkwrap", cwd=project)
    for name in STACK_FUNCTIONS:
        context = project / "build" / name
        assert (context / "Dockerfile").is_file() and (context / "template.yml").is_file(), name
        assert (context / "function" / "handler.py").read_bytes() == \
            (REPO_ROOT / "functions" / name / "handler.py").read_bytes(), name
        assert tree(context / "function" / "common") == tree(REPO_ROOT / "common"), name


class PrivateGateway:
    """A gateway of the test's own over a temporary project's stack file, with basic auth and its own Redis."""

    def __init__(self, root: Path, project: Path) -> None:
        self.root, self.project = root, project
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = uuid.uuid4().hex
        self.redis = Redis(root / "redis", free_port())
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.redis.start()
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        password_file.chmod(0o600)
        with (self.root / "gateway.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ocrstack.gateway", "--port", str(self.port), "--redis-url", self.redis.url,
                 "--stack", str(self.project / "stack.yaml"), "--repo-root", str(self.project),
                 "--state-dir", str(self.root / "state"), "--basic-auth-user", "admin",
                 "--basic-auth-password-file", str(password_file)],
                cwd=self.root, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: port_open(self.port) and Gateway(self.url).request("GET", "/healthz").status == 200,
                   60, what="the private gateway")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.redis.stop()


@pytest.fixture
def empty_project(tmp_path: Path) -> Iterator[tuple[Path, PrivateGateway]]:
    """A project with the python3-ocr template and a stack file without functions yet, and its gateway."""
    project = tmp_path / "project"
    shutil.copytree(REPO_ROOT / "template", project / "template",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    gateway = PrivateGateway(tmp_path, project)
    (project / "stack.yaml").write_text(
        f"version: 1.0\nprovider:\n  name: openfaas\n  gateway: {gateway.url}\nfunctions:\n")
    try:
        gateway.start()
        yield project, gateway
    finally:
        gateway.stop()


def test_new_function_from_the_template_is_deployed_and_invoked(
        empty_project: tuple[Path, PrivateGateway], tmp_path: Path) -> None:
    """`faas-cli new hello --lang python3-ocr --append stack.yaml` makes the function from the project's
    template; deploying the stack file starts it (the gateway reads the file again); its answer shows the
    binary body arrived byte for byte. A function the stack file does not name cannot be deployed."""
    project, gateway = empty_project
    cli = FaasCli(tmp_path / "home", gateway.url)
    cli.login(gateway.password)
    cli.run("new", "hello", "--lang", "python3-ocr", "--append", "stack.yaml", "--quiet", cwd=project)
    assert (project / "hello" / "handler.py").read_bytes() == \
        (REPO_ROOT / "template" / "python3-ocr" / "function" / "handler.py").read_bytes()

    deployed = cli.at("deploy", "-f", "stack.yaml", cwd=project)
    assert "Deployed. 202 Accepted." in output(deployed)
    body = b"%PDF-1.7\r\n\x00\xff\xfe" + os.urandom(4096)
    answer = json.loads(cli.at("invoke", "hello", "--content-type", "application/pdf", input=body,
                               cwd=project).stdout)
    assert answer["size"] == len(body) and answer["sha256"] == hashlib.sha256(body).hexdigest()
    assert answer["function"] == "python3-ocr"
    assert re.search(r"Status:\s+Ready", cli.text("describe", "hello", cwd=project))

    # Outside the project (faas-cli would read ./stack.yaml and deploy hello instead).
    ghost = cli.at("deploy", "--image", "ghost:latest", "--name", "ghost", cwd=tmp_path, ok=False)
    assert ghost.returncode != 0 and "function_unknown" in output(ghost), output(ghost)
    cli.at("remove", "hello", cwd=project)
    assert Gateway(gateway.url).request("POST", "/function/hello").status == 404
