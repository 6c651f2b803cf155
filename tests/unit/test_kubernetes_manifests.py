"""deploy/kubernetes/ holds valid Kubernetes objects (checked by Kubernetes' own Go types) that match stack.yml."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.config import load_settings
from common.errors import ConfigError
from tests.support import RecordingMapping

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "deploy" / "kubernetes"
STACK: dict[str, Any] = yaml.safe_load((REPO / "stack.yml").read_text())["functions"]
FUNCTIONS = list(STACK)
SECRETS_DIR = "/var/openfaas/secrets"
# Variables the Deployments may add to stack.yml's: OCR_WORKERS, because Python counts the node's CPUs, not
# the container's limit (a test below ties it to that limit).
DEPLOYMENT_ONLY = {"ocr-process": {"OCR_WORKERS"}}
# The first test to use the validator may build it (50-140 s measured on a new machine, more on a slow one).
pytestmark = pytest.mark.timeout(900)


def documents() -> list[dict[str, Any]]:
    """Every object in deploy/kubernetes/*.yaml, in file order."""
    docs: list[dict[str, Any]] = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def objects(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in documents() if doc["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "one container per function, as OpenFaaS runs them"
    return dict(containers[0])


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(deployment).get("env", [])}


def projected_secrets(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [source["secret"] for volume in pod_spec.get("volumes", []) if "projected" in volume
            for source in volume["projected"]["sources"] if "secret" in source]


def config_map() -> dict[str, str]:
    return dict(objects("ConfigMap")["ocr-pipeline-env"]["data"])


def settings_variables(secrets_dir: Path) -> tuple[set[str], set[str]]:
    """(every variable load_settings reads, those it refuses to go without), found by running it."""
    env = RecordingMapping({"SECRETS_DIR": str(secrets_dir)})
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    return env.read - {"SECRETS_DIR"}, set(re.findall(r"(\w+) is required", str(raised.value)))


# --- Kubernetes' own types (tools/k8s-validate) --------------------------------------------------------


@pytest.fixture(scope="session")
def k8s_validate() -> Path:
    """The validator, built once into the user's cache (local-stack/bootstrap does it), then found there."""
    built = subprocess.run([REPO / "local-stack" / "k8s-validate", "--path"], capture_output=True, text=True,
                           timeout=900, check=False)
    assert built.returncode == 0, f"local-stack/k8s-validate could not be built:\n{built.stderr}"
    return Path(built.stdout.strip())


def validate(program: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([program, *files], capture_output=True, text=True, timeout=60, check=False)


def test_manifests_decode_strictly_into_kubernetes_types(k8s_validate: Path) -> None:
    """Every document decodes strictly into its Kubernetes type and passes the required-field checks; the set
    is a Deployment and a Service per function, the HPA of ocr-process, the ConfigMap and the retention CronJob."""
    result = validate(k8s_validate, *sorted(MANIFESTS.glob("*.yaml")))
    assert result.returncode == 0, result.stderr
    checked = sorted((o["kind"], o["name"]) for o in map(json.loads, result.stdout.splitlines()))
    wanted = sorted([("Deployment", f) for f in FUNCTIONS] + [("Service", f) for f in FUNCTIONS]
                    + [("HorizontalPodAutoscaler", "ocr-process"), ("ConfigMap", "ocr-pipeline-env"),
                       ("CronJob", "ocr-retention")])
    assert checked == wanted


def _rename(doc: dict[str, Any]) -> None:
    pod = doc["spec"]["template"]["spec"]
    pod["terminationGracePeriod"] = pod.pop("terminationGracePeriodSeconds")


def _port_as_text(doc: dict[str, Any]) -> None:
    doc["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"


def _foreign_selector(doc: dict[str, Any]) -> None:
    doc["spec"]["selector"]["matchLabels"] = {"faas_function": "other"}


def _mount_without_volume(doc: dict[str, Any]) -> None:
    doc["spec"]["template"]["spec"]["volumes"] = []


def _absent_config_map(doc: dict[str, Any]) -> None:
    doc["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "missing"}}]


def _no_cpu_request(doc: dict[str, Any]) -> None:
    del doc["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]


@pytest.mark.parametrize(("change", "message"), [
    (_rename, 'unknown field "terminationGracePeriod"'),
    (_port_as_text, "cannot unmarshal string"),
    (_foreign_selector, "spec.selector does not match spec.template.metadata.labels"),
    (_mount_without_volume, 'no volume "secrets" in the pod'),
    (_absent_config_map, 'no ConfigMap "missing"'),
    (_no_cpu_request, "requests no cpu, so its utilization is undefined"),
], ids=["misspelt-field", "wrong-type", "selector", "volume", "config-map", "hpa-request"])
def test_validator_refuses_a_broken_deployment(k8s_validate: Path, tmp_path: Path,
                                               change: Callable[[dict[str, Any]], None], message: str) -> None:
    """The checker is not a formality: each kind of mistake in ocr-process's Deployment is refused, named."""
    docs = list(yaml.safe_load_all((MANIFESTS / "ocr-process.yaml").read_text()))
    change(docs[0])
    broken = tmp_path / "ocr-process.yaml"
    broken.write_text(yaml.safe_dump_all(docs))
    result = validate(k8s_validate, broken, MANIFESTS / "config.yaml")
    assert result.returncode == 1 and message in result.stderr, result.stderr


def test_validator_refuses_a_kind_it_does_not_know(k8s_validate: Path, tmp_path: Path) -> None:
    """A document of a kind without a typed check (here a misspelt kind) is an error, not skipped."""
    odd = tmp_path / "odd.yaml"
    odd.write_text("apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n")
    result = validate(k8s_validate, odd)
    assert result.returncode == 1 and "apps/v1/Deploymnet is not a kind this checker knows" in result.stderr


# --- the same functions as stack.yml -------------------------------------------------------------------


def test_each_function_of_stack_yml_has_a_deployment_and_a_service_and_nothing_else() -> None:
    """The manifests deploy exactly stack.yml's functions, each reachable by its name on port 8080, where the
    OpenFaaS gateway calls a function."""
    assert sorted(objects("Deployment")) == sorted(objects("Service")) == sorted(FUNCTIONS)
    for name, service in objects("Service").items():
        assert service["spec"]["selector"] == {"faas_function": name}
        assert [p["port"] for p in service["spec"]["ports"]] == [8080]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_deployment_runs_the_image_stack_yml_builds(function: str) -> None:
    """The image is the one `faas-cli build -f stack.yml` tags, so one registry change covers both files."""
    assert container(objects("Deployment")[function])["image"] == STACK[function]["image"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_deployment_environment_is_stack_yml_environment(function: str) -> None:
    """Each function gets stack.yml's environment value for value, and nothing more but the declared extras."""
    wanted = {k: str(v) for k, v in (STACK[function].get("environment") or {}).items()}
    given = env_of(objects("Deployment")[function])
    extra = DEPLOYMENT_ONLY.get(function, set())
    assert {k: v for k, v in given.items() if k not in extra} == wanted
    assert extra <= set(given)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_deployment_mounts_the_secrets_stack_yml_gives_it_where_openfaas_does(function: str) -> None:
    """The secrets stack.yml lists, and no other, are files named after themselves in /var/openfaas/secrets."""
    deployment = objects("Deployment")[function]
    pod = deployment["spec"]["template"]["spec"]
    secrets = projected_secrets(pod)
    assert [s["name"] for s in secrets] == list(STACK[function].get("secrets") or [])
    assert all(s["items"] == [{"key": s["name"], "path": s["name"]}] for s in secrets)
    mounts = container(deployment).get("volumeMounts", [])
    assert [m["mountPath"] for m in mounts] == ([SECRETS_DIR] if secrets else [])


@pytest.mark.parametrize("function", FUNCTIONS)
def test_functions_with_settings_read_the_deployment_config_map(function: str) -> None:
    """Every function with secrets (so with database, bucket and Redis) reads the addresses from the ConfigMap;
    the web page, with none, gets nothing of it."""
    env_from = container(objects("Deployment")[function]).get("envFrom", [])
    expected = [{"configMapRef": {"name": "ocr-pipeline-env"}}] if STACK[function].get("secrets") else []
    assert env_from == expected


def test_config_map_holds_only_settings_the_functions_read(tmp_path: Path) -> None:
    """Every key of the ConfigMap is a variable common.config reads (a misspelt one would be ignored)."""
    read, _ = settings_variables(tmp_path)
    assert set(config_map()) - read == set()


@pytest.mark.parametrize("function", [f for f in FUNCTIONS if STACK[f].get("secrets")])
def test_settings_load_from_the_config_map_and_each_deployments_environment(function: str, tmp_path: Path) -> None:
    """load_settings accepts what a pod gets, the ConfigMap, the Deployment's env and its secret files, and
    points at the ConfigMap's services."""
    pod = objects("Deployment")[function]["spec"]["template"]["spec"]
    for secret in projected_secrets(pod):
        (tmp_path / secret["name"]).write_text("a-secret")
    env = {**config_map(), **env_of(objects("Deployment")[function]), "SECRETS_DIR": str(tmp_path)}
    settings = load_settings(env)
    assert (settings.mysql_host, settings.s3_endpoint) == (config_map()["MYSQL_HOST"], config_map()["S3_ENDPOINT"])
    assert settings.redis_url == config_map()["REDIS_URL"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_pod_is_ready_when_the_images_own_health_check_passes(function: str) -> None:
    """Readiness runs the command of the template's HEALTHCHECK (the watchdog's lock file and functions-framework
    answering), not the watchdog's /_/health alone, which says ready before the function answers."""
    dockerfile = (REPO / "template" / "python3-ocr" / "Dockerfile").read_text()
    healthcheck = re.search(r"^HEALTHCHECK .*? CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert healthcheck, "the template's Dockerfile has no HEALTHCHECK ... CMD [...]"
    probe = container(objects("Deployment")[function])["readinessProbe"]
    assert probe["exec"]["command"] == json.loads(healthcheck.group(1))


def test_ocr_workers_match_the_cpu_limit_of_ocr_process() -> None:
    """One OCR process per CPU the container may use: more would share the limit, fewer would leave it idle."""
    deployment = objects("Deployment")["ocr-process"]
    limit = container(deployment)["resources"]["limits"]["cpu"]
    assert env_of(deployment)["OCR_WORKERS"] == str(int(limit))


def test_autoscaler_bounds_are_stack_yml_scale_labels() -> None:
    """The HPA scales ocr-process between stack.yml's com.openfaas.scale.min and max, and the Deployment sets
    no replica count of its own for `kubectl apply` to reset."""
    hpa = objects("HorizontalPodAutoscaler")["ocr-process"]
    labels = STACK["ocr-process"]["labels"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ocr-process"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
        int(labels["com.openfaas.scale.min"]), int(labels["com.openfaas.scale.max"]))
    assert "replicas" not in objects("Deployment")["ocr-process"]["spec"]


def test_ocr_process_may_finish_its_job_before_it_is_stopped() -> None:
    """A pod told to stop has its watchdog's whole exec_timeout to finish the job in hand."""
    deployment = objects("Deployment")["ocr-process"]
    exec_timeout = int(str(STACK["ocr-process"]["environment"]["exec_timeout"]).rstrip("s"))
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > exec_timeout


def test_retention_runs_in_a_function_image_with_the_secrets_settings_require(tmp_path: Path) -> None:
    """The CronJob runs `python -m common retention` in an image stack.yml builds, with the ConfigMap and every
    secret load_settings refuses to go without."""
    job = objects("CronJob")["ocr-retention"]
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    retention = pod["containers"][0]
    assert retention["image"] in {fn["image"] for fn in STACK.values()}
    assert retention["command"] == ["python", "-m", "common", "retention"]
    assert retention["envFrom"] == [{"configMapRef": {"name": "ocr-pipeline-env"}}]
    _, required = settings_variables(tmp_path)
    source = (REPO / "common" / "config.py").read_text()
    secret_of = dict(re.findall(r'secret\("(\w+)", "([\w-]+)"', source))
    assert sorted(s["name"] for s in projected_secrets(pod)) == sorted(secret_of[v] for v in required)
