"""The container runtime: function images built from the template with their in-build tests, and the local stack
running each function as its image under podman, behind the real of-watchdog, in its own network namespace.

The fixture installs and builds what it needs (local-stack/bootstrap-containers: podman, base images, wheelhouse;
seconds once they exist), so these tests run wherever the rest run; nothing is skipped.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sqlalchemy import select

from common.adapters.db import Document, Job, session_scope
from common.config import Settings, load_settings
from common.rules import apikeys
from ocrstack import containers
from tests.support import Gateway, scanned_pdf, wait_until

# Whichever test comes first pays for the module's stack, images included: on a machine where nothing is built
# yet that is the base images, the wheelhouse and every function image, minutes more than the suite's 300 s.
pytestmark = [pytest.mark.integration, pytest.mark.containers, pytest.mark.timeout(1200)]

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGES = [["CONTAINER page one invoice 4711"], ["CONTAINER page two receipt"]]


def _stack_containers(stack_id: str) -> list[str]:
    listed = containers.podman("ps", "--all", "--filter", f"label={containers.LABEL}={stack_id}",
                               "--format", "{{.Names}}")
    return sorted(listed.stdout.split())


@pytest.fixture(scope="module")
def container_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """MariaDB, Redis, MinIO on the host and the gateway running the five functions as podman containers."""
    from ocrstack.stack import LocalStack, StackPorts

    containers.bootstrap(REPO_ROOT)
    local = LocalStack(tmp_path_factory.mktemp("container-stack"), StackPorts.free(), REPO_ROOT, runtime="containers")
    stack_id = containers.stack_id(local.state_dir)
    try:
        local.start()
        yield local
    finally:
        local.stop()
        # Every container this stack started is gone with it; what its builds (faas-cli's among them) left behind
        # in podman's store too.
        assert _stack_containers(stack_id) == []
        containers.prune_images()


@pytest.fixture(scope="module")
def container_settings(container_stack: Any) -> Settings:
    return load_settings(container_stack.function_env())


@pytest.fixture
def container_admin(container_stack: Any, container_settings: Settings) -> Gateway:
    key = apikeys.create(container_settings, f"test-{uuid.uuid4().hex[:8]}", apikeys.Role.ADMIN).token
    return Gateway(container_stack.gateway_url, api_key=key)


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def test_every_function_runs_in_its_own_container_behind_the_watchdog(container_stack: Any) -> None:
    """One running container per function, from the stack file's image, published on 127.0.0.1 only, with the
    real of-watchdog as its process (its log lines are the function's log)."""
    stack_id = containers.stack_id(container_stack.state_dir)
    names = _stack_containers(stack_id)
    assert names == sorted(containers.container_name(fn, stack_id) for fn in container_stack.function_images())
    for fn, image in container_stack.function_images().items():
        inspected = json.loads(containers.podman("inspect", containers.container_name(fn, stack_id), check=True).stdout)[0]
        assert inspected["State"]["Running"]
        assert inspected["ImageName"].endswith(image)
        bindings = [b for ports in inspected["HostConfig"]["PortBindings"].values() for b in ports]
        assert bindings and all(b["HostIp"] == "127.0.0.1" for b in bindings)
        log = (container_stack.state_dir / "gateway" / "logs" / f"{fn}.log").read_text()
        assert "Watchdog mode: http" in log and "Listening on port: 8080" in log


def test_the_images_health_check_passes_in_its_running_container(container_stack: Any) -> None:
    """The image's HEALTHCHECK command (run by hand: containers start with --no-healthcheck, as podman's timers
    need systemd) finds the watchdog's lock file and functions-framework answering."""
    stack_id = containers.stack_id(container_stack.state_dir)
    for fn in container_stack.function_images():
        done = containers.podman("exec", containers.container_name(fn, stack_id), "python", "/home/app/healthcheck.py")
        assert done.returncode == 0, f"{fn}: {done.stdout} {done.stderr}"


def test_function_images_passed_their_build_time_tests(container_stack: Any) -> None:
    """Each image carries the test stage's marker: template_test.py (and the function's tests) passed while it
    built (a cached build reuses the stage that passed for the same files)."""
    for fn, image in container_stack.function_images().items():
        done = subprocess.run([*containers.PODMAN, "run", "--rm", "--network", "none", *containers.ULIMITS,
                               "--no-healthcheck", image, "test", "-f", "/home/app/.tests-passed"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"{fn}: {done.stderr}"
        assert (container_stack.state_dir / "logs" / f"build-{fn}.log").is_file()


def test_a_failing_handler_test_fails_the_image_build(tmp_path: Path) -> None:
    """A function whose own test fails does not become an image: the build stops at the test stage."""
    shutil.copytree(REPO_ROOT / "template", tmp_path / "template")
    shutil.copytree(REPO_ROOT / "common", tmp_path / "common", ignore=shutil.ignore_patterns("__pycache__"))
    handler = tmp_path / "broken"
    (handler / "tests").mkdir(parents=True)
    (handler / "handler.py").write_text("def handle(request):\n    return 'ok'\n")
    (handler / "tests" / "test_broken.py").write_text("def test_handle_says_hello():\n    assert 'ok' == 'hello'\n")
    image = f"ocr-pipeline-test/broken-{uuid.uuid4().hex[:8]}:latest"
    (tmp_path / "stack.yml").write_text(
        "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n"
        f"  broken:\n    lang: python3-ocr\n    handler: ./broken\n    image: {image}\n"
        "configuration:\n  copy:\n    - ./common\n")
    with pytest.raises(containers.ImageBuildError) as refused:
        containers.build_function_images(tmp_path, tmp_path / "stack.yml", {"broken": image})
    assert "1 failed" in str(refused.value) and "test_handle_says_hello" in str(refused.value)
    assert containers.podman("image", "exists", image).returncode != 0


def _job_of_key(settings: Settings, key: str) -> str | None:
    with session_scope(settings) as session:
        return session.execute(
            select(Job.id).join(Document, Document.job_id == Job.id).where(Document.object_key == key)
        ).scalar_one_or_none()


def test_dropped_scan_is_read_in_containers_as_in_process_mode(container_stack: Any, container_admin: Gateway,
                                                                container_settings: Settings, gateway: Gateway) -> None:
    """A scanned PDF dropped into the bucket: MinIO's notification reaches ocr-process in its container through the
    gateway's queue, status and list answer from theirs, and the text is the text process mode reads."""
    from common.adapters.storage import minio_client

    data = scanned_pdf(PAGES)
    key = f"{container_settings.inbox_prefix}{container_admin.key_id}/scan {uuid.uuid4().hex[:8]}.pdf"
    minio_client(container_settings).put_object(container_settings.s3_bucket, key, io.BytesIO(data), len(data),
                                                content_type="application/pdf")
    job_id = wait_until(lambda: _job_of_key(container_settings, key), 60, what="the drop to be registered")
    done = container_admin.wait_final(job_id)
    assert done["status"] == "completed", done
    assert done["source"] == "drop" and done["page_count"] == 2

    listed = container_admin.request("GET", "/function/list?limit=5")
    assert listed.status == 200
    assert job_id in json.dumps(listed.json()) or done["document_id"] in json.dumps(listed.json())

    # The same scan through the process-mode stack of the rest of the suite.
    reply = gateway.upload(data, "scan.pdf")
    assert reply.status == 202, reply.body
    reference = gateway.wait_final(reply.json()["job_id"])
    assert reference["status"] == "completed"
    assert _words(done["text"]) == _words(reference["text"])
    assert "container page one invoice 4711" in _words(done["text"])

    # ocr-process's own log (the container's output) has the job.
    log = (container_stack.state_dir / "gateway" / "logs" / "ocr-process.log").read_text()
    assert job_id in log


def test_upload_status_and_list_through_their_containers(container_admin: Gateway) -> None:
    """upload's container stores the scan and hands the job on; status and list read it back from theirs."""
    reply = container_admin.upload(scanned_pdf(PAGES[:1]), "one page.pdf")
    assert reply.status == 202, reply.body
    job_id = reply.json()["job_id"]
    done = container_admin.wait_final(job_id)
    assert done["status"] == "completed", done
    assert "container page one invoice 4711" in _words(done["text"])
    text = container_admin.status(job_id, "?format=text")
    assert text.status == 200 and b"4711" in text.body
    found = container_admin.request("GET", "/function/list?q=4711&limit=50")
    assert found.status == 200 and done["document_id"] in json.dumps(found.json())


def test_a_killed_container_is_started_again(container_stack: Any, container_admin: Gateway) -> None:
    """SIGKILL to a function's container: the gateway notices and starts a new one, which answers."""
    name = containers.container_name("status", containers.stack_id(container_stack.state_dir))
    before = json.loads(containers.podman("inspect", name, check=True).stdout)[0]["Id"]
    containers.podman("kill", "--signal", "KILL", name, check=True)

    def replaced() -> bool:
        done = containers.podman("inspect", name)
        return done.returncode == 0 and json.loads(done.stdout)[0]["Id"] != before and \
            json.loads(done.stdout)[0]["State"]["Running"]

    wait_until(replaced, 60, what="a new status container")
    wait_until(lambda: container_admin.status(str(uuid.uuid4())).status == 404, 60, what="status to answer")


def test_status_answers_from_its_container_quickly(container_admin: Gateway) -> None:
    """Warm requests through gateway -> watchdog -> functions-framework stay fast (figures in the report)."""
    missing = str(uuid.uuid4())
    container_admin.status(missing)
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        assert container_admin.status(missing).status == 404
        timings.append(time.perf_counter() - started)
    timings.sort()
    assert timings[len(timings) // 2] < 0.5


def test_podman_tools_are_the_ones_the_runtime_uses() -> None:
    """runc is the runtime (crun fails on this kernel's hybrid cgroups)."""
    assert containers.PODMAN[:3] == ["podman", "--runtime", "runc"]
    assert subprocess.run(["runc", "--version"], capture_output=True, check=False).returncode == 0


def test_faas_cli_deploy_replaces_a_container_and_remove_stops_it(container_stack: Any, container_admin: Gateway,
                                                                  tmp_path: Path) -> None:
    """`faas-cli deploy` starts a new container of the stack file's image in place of the old one; `faas-cli
    remove` stops and removes it; a deploy brings it back."""
    from tests.integration.test_faas_cli import FaasCli

    cli = FaasCli(tmp_path / "home", container_stack.gateway_url)
    cli.login(container_stack.gateway_auth[1])
    name = containers.container_name("list", containers.stack_id(container_stack.state_dir))

    def container_id() -> str | None:
        done = containers.podman("inspect", "--format", "{{.Id}}", name)
        return done.stdout.strip() if done.returncode == 0 else None

    before = container_id()
    assert before
    try:
        cli.at("deploy", "-f", "stack.yml", "--filter", "list")
        assert container_id() not in (None, before)
        assert container_admin.request("GET", "/function/list?limit=1").status == 200
        cli.at("remove", "list")
        assert container_id() is None
        assert container_admin.request("GET", "/function/list?limit=1").status == 404
    finally:
        cli.at("deploy", "-f", "stack.yml", "--filter", "list")
    assert container_id() is not None
    assert container_admin.request("GET", "/function/list?limit=1").status == 200


def _container_id(name: str) -> str | None:
    done = containers.podman("inspect", "--format", "{{.Id}}", name)
    return done.stdout.strip() if done.returncode == 0 else None


def _shim_cli(container_stack: Any, home: Path) -> Any:
    """faas-cli logged in to the container stack's gateway, with the container bootstrap's `docker` (podman
    underneath) first on its PATH."""
    from tests.integration.test_faas_cli import FaasCli

    cli = FaasCli(home, container_stack.gateway_url, docker=containers.docker_shim().parent)
    cli.login(container_stack.gateway_auth[1])
    return cli


def test_faas_cli_up_builds_and_deploys_logs_shows_json_lines_and_remove_stops_the_container(
        container_stack: Any, container_admin: Gateway, tmp_path: Path) -> None:
    """`faas-cli up --skip-push -f stack.yml` builds each function image through the docker shim (podman, from
    faas-cli's own build/<fn>/ context, wheels from the wheelhouse, the in-build tests run or their passing stage
    reused) and deploys it: the gateway runs the image just built as a new container. `faas-cli logs` shows the
    function's JSON lines from its container; `faas-cli remove` stops and removes the container."""
    from tests.integration.test_faas_cli import output, records

    stack_id = containers.stack_id(container_stack.state_dir)
    images = container_stack.function_images()
    names = {fn: containers.container_name(fn, stack_id) for fn in images}
    before = {fn: _container_id(name) for fn, name in names.items()}
    assert all(before.values())
    cli = _shim_cli(container_stack, tmp_path / "home")

    up = output(cli.at("up", "--skip-push", "-f", "stack.yml", timeout=900))
    for fn, image in images.items():
        assert f"Image: {image} built." in up, up[-3000:]
    assert up.count("Deployed. 202 Accepted.") == len(images), up[-3000:]
    for fn, image in images.items():
        inspected = json.loads(containers.podman("inspect", names[fn], check=True).stdout)[0]
        assert inspected["Id"] != before[fn] and inspected["State"]["Running"], fn
        built = json.loads(containers.podman("image", "inspect", image, check=True).stdout)[0]
        assert inspected["Image"] == built["Id"], fn
        assert built["Labels"][containers.BUILD_LABEL] == "local-stack", fn

    # The new status container answers, and its output is what faas-cli logs shows.
    request_id = f"up-logs-{uuid.uuid4().hex}"
    reply = container_admin.request("GET", f"/function/status/{uuid.uuid4()}", headers={"X-Request-Id": request_id})
    assert reply.status == 404

    def logged() -> list[dict[str, Any]] | None:
        shown = records(cli.text("logs", "status", "--tail=false", "--output", "json", "--since", "10m", timeout=60))
        return [r for r in shown if request_id in r["text"]] or None

    line = wait_until(logged, 30, what="status's log line in faas-cli logs")[0]
    assert line["name"] == "status" and line["instance"].startswith("status-") and line["timestamp"]
    assert json.loads(line["text"])["request_id"] == request_id

    try:
        cli.at("remove", "status")
        assert _container_id(names["status"]) is None
        assert _stack_containers(stack_id) == sorted(n for fn, n in names.items() if fn != "status")
        assert container_admin.status(str(uuid.uuid4())).status == 404
        assert "status" not in cli.text("list").split()
    finally:
        cli.at("deploy", "-f", "stack.yml", "--filter", "status")
    assert _container_id(names["status"]) is not None
    wait_until(lambda: container_admin.status(str(uuid.uuid4())).status == 404, 60, what="status to answer")


def test_plain_faas_cli_build_installs_a_functions_own_requirements_from_the_wheelhouse(tmp_path: Path) -> None:
    """Plain `faas-cli build` of a new function with a requirement of its own, through the docker shim: no package
    index is reachable from a build here, so pip can only have installed it from the wheelhouse (the named build
    context the shim adds); the function's own test, which imports it, ran in the build."""
    from tests.integration.test_faas_cli import FaasCli, output

    wheel = next(containers.wheelhouse().glob("iniconfig-*.whl"))
    version = wheel.name.split("-")[1]
    project = tmp_path / "project"
    shutil.copytree(REPO_ROOT / "template", project / "template", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "common", project / "common", ignore=shutil.ignore_patterns("__pycache__"))
    handler = project / "hello"
    (handler / "tests").mkdir(parents=True)
    marker = uuid.uuid4().hex  # new code each run: the layers from the function's folder on are built again
    (handler / "handler.py").write_text(
        f"import iniconfig\n\nMARKER = {marker!r}\n\n\ndef handle(request):\n    return iniconfig.__name__\n")
    (handler / "requirements.txt").write_text(f"iniconfig=={version}\n")
    (handler / "tests" / "test_hello.py").write_text(
        "import handler\n\n\ndef test_it_has_its_requirement():\n    assert handler.handle(None) == 'iniconfig'\n")
    image = f"ocr-pipeline-test/hello-{marker[:8]}:latest"
    (project / "stack.yml").write_text(
        "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n"
        f"  hello:\n    lang: python3-ocr\n    handler: ./hello\n    image: {image}\n"
        "configuration:\n  copy:\n    - ./common\n")
    cli = FaasCli(tmp_path / "home", "http://127.0.0.1:1", docker=containers.docker_shim().parent)
    try:
        built = output(cli.run("build", "-f", "stack.yml", cwd=project, timeout=600))
        assert f"Image: {image} built." in built, built[-3000:]
        assert "Looking in links: /tmp/wheelhouse" in built and f"Processing /tmp/wheelhouse/{wheel.name}" in built
        assert re.search(r"Successfully installed .*iniconfig-" + re.escape(version), built), built[-3000:]
        assert re.search(r"\b\d+ passed\b", built) and " failed" not in built, built[-3000:]
        done = subprocess.run([*containers.PODMAN, "run", "--rm", "--network", "none", *containers.ULIMITS,
                               "--no-healthcheck", image, "python", "-c",
                               "import iniconfig, pathlib; print(pathlib.Path('/home/app/.tests-passed').exists())"],
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr
        made = _made_by_this_build(image)
        assert made
    finally:
        containers.podman("rmi", "--ignore", image, timeout=120)
        containers.prune_images()
    # Removing the image left its build's other layers untagged (its test stage among them): pruning took them.
    assert not made & {str(i["Id"]) for i in containers.list_images()}


def _made_by_this_build(image: str) -> set[str]:
    """The images of `image`'s own build: its layers that no other named image is built on, and every image built
    on one of them (its test stage)."""
    images = containers.list_images()
    parent = {str(i["Id"]): str(i.get("ParentId") or "") for i in images}

    def lineage(image_id: str) -> list[str]:
        chain: list[str] = []
        while image_id in parent and image_id not in chain:
            chain.append(image_id)
            image_id = parent[image_id]
        return chain

    target = json.loads(containers.podman("image", "inspect", image, check=True).stdout)[0]["Id"]
    others = {a for i in images if i.get("Names") and i["Id"] != target for a in lineage(str(i["Id"]))}
    own = set(lineage(target)) - others
    return own | {str(i["Id"]) for i in images if own & set(lineage(str(i["Id"])))}


def test_a_job_held_by_a_killed_container_completes(container_stack: Any, container_admin: Gateway,
                                                    container_settings: Settings, tmp_path: Path) -> None:
    """SIGKILL to ocr-process's container while it OCRs a document: the gateway starts a new container, the
    queue delivers the failed call again, and once the dead worker's lease has run out (JOB_LEASE_SECONDS=5,
    set by a deployment) the new container claims the job and completes it, every page read, on a second attempt."""
    stack_id = containers.stack_id(container_stack.state_dir)
    name = containers.container_name("ocr-process", stack_id)
    cli = _shim_cli(container_stack, tmp_path / "home")
    pages = [[f"SURVIVOR page {n} of the killed container"] for n in range(1, 7)]

    def job_row(job_id: str) -> Any:
        with session_scope(container_settings) as session:
            job = session.get(Job, job_id)
            return None if job is None else (job.status.value, job.pages_done, job.attempts)

    try:
        cli.at("deploy", "-f", "stack.yml", "--filter", "ocr-process", "-e", "JOB_LEASE_SECONDS=5")
        before = _container_id(name)
        assert before
        reply = container_admin.upload(scanned_pdf(pages), "killed.pdf")
        assert reply.status == 202, reply.body
        job_id = reply.json()["job_id"]
        wait_until(lambda: (lambda row: row is not None and row[0] == "processing" and row[1] >= 1)(job_row(job_id)),
                   120, interval=0.1, what="the job to be under way in the container")
        containers.podman("kill", "--signal", "KILL", name, check=True)
        status, pages_done, attempts = job_row(job_id)
        assert status == "processing" and pages_done < len(pages), "the job finished before the kill"

        done = container_admin.wait_final(job_id, timeout=240)
        assert done["status"] == "completed", done
        assert done["attempts"] == 2 and done["page_count"] == len(pages) == done["pages_done"], done
        for n in range(1, len(pages) + 1):
            assert f"survivor page {n} of the killed container" in _words(done["text"])
        after = _container_id(name)
        assert after not in (None, before)
        log = (container_stack.state_dir / "gateway" / "logs" / "ocr-process.log").read_text()
        assert log.count('"event": "function.started"') >= 2 and job_id in log
    finally:
        cli.at("deploy", "-f", "stack.yml", "--filter", "ocr-process")
