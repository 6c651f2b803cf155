"""docker-compose.yml and the python3-ocr template agree with the code, stack.yml and faas-cli's build layout."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from common import cli
from common.config import load_settings
from common.errors import ConfigError
from tests.support import RecordingMapping

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template" / "python3-ocr"
DOCKERFILE = TEMPLATE / "Dockerfile"
GATEWAY_DOCKERFILE = REPO / "local-stack" / "Dockerfile"
# Every function stack.yml deploys; each must have its compose service (the tests below look them up).
FUNCTIONS = list(yaml.safe_load((REPO / "stack.yml").read_text())["functions"])
# Those that use the database, the bucket and Redis (and so their settings and secrets): all but the ones stack.yml
# mounts no secret for, such as ui, the web page (static files on the public API).
SERVICE_FUNCTIONS = [name for name, fn in yaml.safe_load((REPO / "stack.yml").read_text())["functions"].items()
                     if fn.get("secrets")]
# Compose services that run common/ outside a function: the one-shot setup and the retention loop.
TOOLS = ["setup", "retention"]


# --- reading the files ---------------------------------------------------------------------------


def env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error} and $$, enough for our file."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        current = env.get(name)
        unset = current is None or (current == "" and op is not None and op.startswith(":"))
        if op in (":?", "?") and unset:
            raise KeyError(f"{name}: {arg}")
        if op in (":-", "-") and unset:
            return arg
        return current or ""

    return _VARIABLE.sub(substitute, value)


def compose() -> dict[str, Any]:
    """docker-compose.yml as compose resolves it with .env.example (anchors merged, variables filled)."""
    raw = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    resolved: dict[str, Any] = interpolate(raw, env_file(REPO / ".env.example"))
    return resolved


def stack() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "stack.yml").read_text())
    return loaded


def service_env(service: Mapping[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {str(k): str(v) for k, v in environment.items()}


def secret_variables() -> dict[str, str]:
    """{OpenFaaS secret name: the variable common/config.py reads instead outside OpenFaaS}."""
    source = (REPO / "common" / "config.py").read_text()
    return {secret: variable for variable, secret in re.findall(r'secret\("(\w+)", "([\w-]+)"', source)}


def settings_variables(secrets_dir: Path) -> tuple[set[str], set[str]]:
    """(every variable load_settings reads, those it rejects when absent), found by running it."""
    env = RecordingMapping({"SECRETS_DIR": str(secrets_dir)})
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    required = set(re.findall(r"(\w+) is required", str(raised.value)))
    return env.read - {"SECRETS_DIR"}, required


@dataclass
class Instruction:
    keyword: str
    args: str
    stage: str


@dataclass
class Stage:
    name: str
    base: str
    args: dict[str, str] = field(default_factory=dict)


def dockerfile(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped, each tagged with its stage."""
    logical: list[str] = []
    current = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # docker also skips comment and blank lines inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    instructions: list[Instruction] = []
    stage = ""
    for text in logical:
        keyword, _, args = text.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            stage = parts[-1] if len(parts) >= 3 and parts[-2].upper() == "AS" else parts[0]
        instructions.append(Instruction(keyword, args.strip(), stage))
    return instructions


def env_of(instructions: list[Instruction], stage: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV" and ins.stage == stage:
            for pair in shlex.split(ins.args):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def arg_defaults(instructions: list[Instruction], stage: str) -> dict[str, str]:
    defaults: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ARG" and ins.stage == stage:
            name, _, value = ins.args.partition("=")
            defaults[name] = value.strip('"')
    return defaults


def copy_sources(instructions: list[Instruction], build_args: Mapping[str, str]) -> Iterator[str]:
    """The context paths every COPY without --from reads, with ARGs resolved as docker build would."""
    for ins in instructions:
        if ins.keyword != "COPY":
            continue
        words = ins.args.split()
        if any(w.startswith("--from") for w in words):
            continue
        values = {**arg_defaults(instructions, ins.stage), **build_args}
        for source in [w for w in words if not w.startswith("--")][:-1]:
            yield re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], source)


def shrinkwrap(function: str, out: Path) -> Path:
    """The build context `faas-cli build --shrinkwrap` makes (go-sdk builder.CreateBuildContext).

    Template folder at the root, the handler folder's entries (but build/ and template/) in function/,
    and each `configuration.copy` path inside function/ as well, not next to it.
    """
    spec = stack()
    fn = spec["functions"][function]
    context = out / "build" / function
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "template" / fn["lang"], context, ignore=ignore)
    handler_dir = REPO / fn["handler"]
    for entry in handler_dir.iterdir():
        if entry.name in ("build", "template", "__pycache__"):
            continue
        target = context / "function" / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target, ignore=ignore)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(entry, target)
    for extra in spec.get("configuration", {}).get("copy", []):
        shutil.copytree(REPO / extra, context / "function" / extra, ignore=ignore, dirs_exist_ok=True)
    return context


# --- docker-compose.yml --------------------------------------------------------------------------


def test_compose_file_is_valid_for_docker_compose() -> None:
    """`docker-compose config -q` accepts the file with .env.example (validation needs no Docker daemon)."""
    tool = shutil.which("docker-compose")
    assert tool is not None, "docker-compose is missing: local-stack/bootstrap installs Debian's docker-compose"
    clean_env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root")}
    result = subprocess.run(
        [tool, "-f", "docker-compose.yml", "--env-file", ".env.example", "config", "-q"],
        cwd=REPO, env=clean_env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr


def test_env_example_fills_every_required_compose_variable() -> None:
    """Every ${VAR:?...} in docker-compose.yml has a value in .env.example."""
    compose()  # raises KeyError naming the variable otherwise


def test_every_depends_on_target_is_a_service() -> None:
    """depends_on names only services of the file."""
    services = compose()["services"]
    for name, service in services.items():
        for target in service.get("depends_on") or {}:
            assert target in services, f"{name} depends on unknown service {target}"


def test_services_waited_on_as_healthy_have_a_health_check() -> None:
    """A service_healthy condition only ever waits on a service that defines a health check."""
    services = compose()["services"]
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            if rule.get("condition") == "service_healthy":
                assert services[target].get("healthcheck", {}).get("test"), f"{name} waits on {target}"


def test_functions_start_after_setup_and_the_backing_services() -> None:
    """Each function using them waits for setup to finish and MySQL, Redis and MinIO to be healthy; the gateway for
    every function."""
    services = compose()["services"]
    for function in FUNCTIONS:
        assert services["gateway"]["depends_on"][function]["condition"] == "service_healthy"
    for function in SERVICE_FUNCTIONS:
        rules = services[function]["depends_on"]
        assert rules["setup"]["condition"] == "service_completed_successfully"
        for backing in ("mysql", "redis", "minio"):
            assert rules[backing]["condition"] == "service_healthy"


def test_every_function_of_stack_yml_has_a_compose_service_behind_the_gateway() -> None:
    """Each stack.yml function is a compose service, routed by the gateway to its container and waited on as healthy.

    Without --upstream the gateway would start the function as a process inside its own container."""
    services = compose()["services"]
    command = services["gateway"]["command"]
    for function in FUNCTIONS:
        assert function in services, f"{function} has no compose service"
        assert f"--upstream={function}=http://{function}:8080" in command, function
        assert services["gateway"]["depends_on"][function]["condition"] == "service_healthy", function


@pytest.mark.parametrize("function", SERVICE_FUNCTIONS + TOOLS)
def test_required_settings_are_set_for_each_function(function: str, tmp_path: Path) -> None:
    """Every setting without a default (the secrets) is given to the function by the compose file."""
    _, required = settings_variables(tmp_path)
    assert required, "load_settings should require at least the secrets"
    missing = required - set(service_env(compose()["services"][function]))
    assert not missing, f"{function} lacks {sorted(missing)}"


@pytest.mark.parametrize("function", SERVICE_FUNCTIONS + TOOLS)
def test_settings_load_from_each_functions_compose_environment(function: str, tmp_path: Path) -> None:
    """load_settings accepts the environment compose gives the function, and it points at the compose services."""
    env = {**service_env(compose()["services"][function]), "SECRETS_DIR": str(tmp_path)}
    settings = load_settings(env)
    assert (settings.mysql_host, settings.s3_endpoint) == ("mysql", "minio:9000")
    assert settings.redis_url.startswith("redis://redis:")
    assert settings.auth, "API keys are on by default"


# What functions-framework itself reads when it starts the server: its ASGI server or not, worker processes
# and threads per process.
SERVER_VARIABLES = {"FUNCTION_USE_ASGI", "WORKERS", "THREADS"}


@pytest.mark.parametrize("function", FUNCTIONS + TOOLS)
def test_functions_get_no_setting_the_code_does_not_read(function: str, tmp_path: Path) -> None:
    """Upper-case variables given to a function are all read by common.config or by the function server (a
    misspelt name would be ignored)."""
    read, _ = settings_variables(tmp_path)
    given = {name for name in service_env(compose()["services"][function]) if name.isupper()}
    assert not given - read - SERVER_VARIABLES, f"{function} gets unread variables {sorted(given - read)}"


def test_server_variables_are_the_ones_functions_framework_reads() -> None:
    """The pinned functions-framework still takes FUNCTION_USE_ASGI, WORKERS and THREADS from the environment."""
    import inspect

    from functions_framework import _cli
    from functions_framework._http import gunicorn

    source = inspect.getsource(gunicorn.GunicornApplication.__init__) + inspect.getsource(gunicorn.UvicornApplication)
    assert all(f'"{name}"' in source for name in SERVER_VARIABLES - {"FUNCTION_USE_ASGI"})
    assert '"FUNCTION_USE_ASGI"' in inspect.getsource(_cli)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_environment_matches_stack_yml(function: str) -> None:
    """Compose runs each function with the environment stack.yml deploys it with."""
    wanted = {k: str(v) for k, v in (stack()["functions"][function].get("environment") or {}).items()}
    given = service_env(compose()["services"][function])
    assert {k: given.get(k) for k in wanted} == wanted


@pytest.mark.parametrize("function", FUNCTIONS)
def test_functions_are_built_from_the_template_with_their_handler(function: str) -> None:
    """Each function image is the python3-ocr template built around functions/<name>, and every COPY source exists."""
    build = compose()["services"][function]["build"]
    assert Path(build["dockerfile"]) == DOCKERFILE.relative_to(REPO)
    assert build["args"]["HANDLER_DIR"] == f"functions/{function}"
    context = REPO / build.get("context", ".")
    for source in copy_sources(dockerfile(), build["args"]):
        assert (context / source).exists(), f"COPY source {source} missing from the compose build context"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_functions_get_the_secrets_stack_yml_gives_them_and_no_other(function: str) -> None:
    """Compose passes, as variables, exactly the secrets stack.yml mounts for the function (internal-token included)."""
    variables = secret_variables()
    assert {"mysql-password", "internal-token"} <= set(variables)
    given = set(service_env(compose()["services"][function]))
    mounted = set(stack()["functions"][function].get("secrets") or [])
    assert mounted <= set(variables), f"{function} mounts secrets config.py does not read"
    assert {variables[name] for name in mounted} <= given
    assert not {variables[name] for name in set(variables) - mounted} & given, f"{function} gets a secret it lacks"


def test_ocr_process_and_the_callers_of_its_queue_share_minios_webhook_token() -> None:
    """MinIO's webhook target sends the same INTERNAL_TOKEN ocr-process checks and upload and documents send."""
    services = compose()["services"]
    token = service_env(services["minio"])["MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_OCR"]
    assert token and " " not in token
    for function in FUNCTIONS:
        if "internal-token" in (stack()["functions"][function].get("secrets") or []):
            assert service_env(services[function])["INTERNAL_TOKEN"] == token, function
    assert "internal-token" in stack()["functions"]["ocr-process"]["secrets"]


@pytest.mark.parametrize("function", SERVICE_FUNCTIONS)
def test_result_links_are_signed_for_a_host_users_reach(function: str) -> None:
    """Functions reach MinIO as minio:9000 inside compose; the links they sign name its published address."""
    env = service_env(compose()["services"][function])
    assert env["S3_ENDPOINT"] == "minio:9000"
    assert env["S3_PUBLIC_ENDPOINT"] == "127.0.0.1:9000"


def test_ocr_process_gets_the_inbox_owner() -> None:
    """INBOX_OWNER reaches the function that registers drops (an empty value means drops outside inbox/<key id>/ are
    refused)."""
    assert "INBOX_OWNER" in service_env(compose()["services"]["ocr-process"])


def test_retention_runs_the_retention_command_with_the_function_environment(tmp_path: Path) -> None:
    """The retention service loops `ocr-pipeline retention --every N` with RETENTION_DAYS, after setup."""
    service = compose()["services"]["retention"]
    command = service["command"]
    assert command[:2] == ["ocr-pipeline", "retention"] and "--every" in command
    assert int(command[command.index("--every") + 1]) > 0
    env = service_env(service)
    assert load_settings({**env, "SECRETS_DIR": str(tmp_path)}).retention_days == int(env["RETENTION_DAYS"])
    assert service["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert service["build"]["dockerfile"] == "local-stack/Dockerfile"


def test_setup_runs_init_which_tells_how_to_make_the_first_admin_key() -> None:
    """setup is `ocr-pipeline init` (schema, bucket, rules), which names the command that makes the first admin
    key when there is none; the header comment gives it as compose runs it."""
    assert compose()["services"]["setup"]["command"][:2] == ["ocr-pipeline", "init"]
    assert cli.FIRST_ADMIN_KEY == "keys create --name admin --role admin"
    wanted = f"docker compose run --rm setup ocr-pipeline {cli.FIRST_ADMIN_KEY}"
    assert wanted in (REPO / "docker-compose.yml").read_text().split("services:")[0]


@pytest.mark.parametrize("service", TOOLS)
def test_tools_run_a_command_the_project_installs(service: str) -> None:
    """setup and retention run `ocr-pipeline`, the console script pyproject.toml declares, in the gateway image,
    which installs the project."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["ocr-pipeline"] == "common.cli:main"
    assert compose()["services"][service]["command"][0] in scripts
    assert compose()["services"][service]["build"]["dockerfile"] == "local-stack/Dockerfile"
    assert any(i.keyword == "RUN" and "pip install --no-deps ." in i.args for i in dockerfile(GATEWAY_DOCKERFILE))


def test_gateway_image_copies_only_files_that_exist() -> None:
    """Every COPY source of local-stack/Dockerfile exists in its build context, the repository root."""
    for source in copy_sources(dockerfile(GATEWAY_DOCKERFILE), {}):
        assert (REPO / source).exists(), f"COPY source {source} missing from the repository"


def test_minio_notifies_the_gateways_async_ocr_process_through_a_disk_queue() -> None:
    """The OCR webhook target posts to /async-function/ocr-process on the gateway and queues events on a volume."""
    minio = compose()["services"]["minio"]
    env = service_env(minio)
    assert env["MINIO_NOTIFY_WEBHOOK_ENABLE_OCR"] == "on"
    assert env["MINIO_NOTIFY_WEBHOOK_ENDPOINT_OCR"] == "http://gateway:8080/async-function/ocr-process"
    queue_dir = env["MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_OCR"]
    assert any(volume.split(":")[1] == queue_dir for volume in minio["volumes"])
    assert cli.DEFAULT_WEBHOOK_ARN == "arn:minio:sqs::OCR:webhook"
    assert cli.DEFAULT_WEBHOOK_ARN in compose()["services"]["setup"]["command"]


def test_images_are_pinned() -> None:
    """Pulled images name a version, never latest."""
    for name, service in compose()["services"].items():
        if "build" in service:
            continue
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name} uses {image}"


# --- template/python3-ocr ------------------------------------------------------------------------


def template_yml() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((TEMPLATE / "template.yml").read_text())
    return loaded


def test_stack_functions_use_this_template() -> None:
    """stack.yml builds every function with the language this template declares."""
    assert {fn["lang"] for fn in stack()["functions"].values()} == {template_yml()["language"]}
    assert template_yml()["language"] == TEMPLATE.name


def test_fprocess_serves_handle_with_functions_framework_on_the_upstream_port() -> None:
    """template.yml's fprocess runs functions-framework with target handle from function/handler.py on 127.0.0.1:5000."""
    argv = shlex.split(template_yml()["fprocess"])
    assert argv[0] == "functions-framework"
    options = dict(zip(argv[1::2], argv[2::2]))
    assert options == {"--target": "handle", "--source": "function/handler.py", "--host": "127.0.0.1", "--port": "5000"}


def test_dockerfile_runs_the_watchdog_in_http_mode_with_the_template_fprocess() -> None:
    """The image's watchdog settings: same fprocess as template.yml, http mode, upstream on :5000, one OMP thread."""
    env = env_of(dockerfile(), "ship")
    assert env["fprocess"] == template_yml()["fprocess"]
    assert env["mode"] == "http"
    assert env["upstream_url"] == "http://127.0.0.1:5000"
    assert env["OMP_THREAD_LIMIT"] == "1"
    for timeout in ("exec_timeout", "read_timeout", "write_timeout"):
        assert re.fullmatch(r"\d+s", env[timeout]) and int(env[timeout][:-1]) >= 300, timeout


def test_dockerfile_pins_the_watchdog_and_starts_it() -> None:
    """of-watchdog comes from a pinned image, CMD is fwatchdog and a HEALTHCHECK is declared."""
    instructions = dockerfile()
    froms = [i.args for i in instructions if i.keyword == "FROM"]
    assert any(re.fullmatch(r"ghcr\.io/openfaas/of-watchdog:\d+\.\d+\.\d+ AS watchdog", f) for f in froms)
    assert any(f.startswith("python:3.11-slim-bookworm") for f in froms)
    last_stage = instructions[-1].stage
    assert [i.args for i in instructions if i.keyword == "CMD" and i.stage == last_stage] == ['["fwatchdog"]']
    assert any(i.keyword == "HEALTHCHECK" and i.stage == last_stage for i in instructions)


def test_offline_wheels_come_from_the_named_wheelhouse_context() -> None:
    """Wheels for an offline build come in as the named build context `wheelhouse` (an empty stage unless a build
    gives one: podman's and BuildKit's --build-context replace a stage of that name), bind-mounted into every pip
    install, which then uses them alone; nothing about wheels in the build context or a build argument."""
    instructions = dockerfile()
    assert [i.args for i in instructions if i.keyword == "FROM"][0] == "scratch AS wheelhouse"
    installs = [i.args for i in instructions if i.keyword == "RUN" and "pip install" in i.args]
    assert len(installs) == 3
    for args in installs:
        assert args.startswith("--mount=type=bind,from=wheelhouse,target=/tmp/wheelhouse "), args
        assert "--no-index --find-links /tmp/wheelhouse" in args
    assert "PIP_WHEELHOUSE" not in DOCKERFILE.read_text() and "source=." not in DOCKERFILE.read_text()


def test_function_tests_import_the_handler_in_the_test_stage() -> None:
    """A function's tests/ run with function/ on their path, so they can `import handler` (and common)."""
    runs = [i.args for i in dockerfile() if i.keyword == "RUN" and i.stage == "test" and "pytest -q" in i.args]
    assert len(runs) == 1 and "-o pythonpath=function" in runs[0]


def test_shipped_image_depends_on_the_test_stage() -> None:
    """The final stage copies from the test stage, so a failing test fails the build (BuildKit skips unused stages)."""
    instructions = dockerfile()
    last_stage = instructions[-1].stage
    assert any(i.keyword == "RUN" and "pytest" in i.args for i in instructions if i.stage == "test")
    assert any(i.keyword == "COPY" and "--from=test" in i.args for i in instructions if i.stage == last_stage)


def test_dockerfile_copies_common_into_the_function_folder() -> None:
    """common/ goes to function/common, where faas-cli's configuration.copy puts it and handler.py's imports find it."""
    copies = [i.args for i in dockerfile() if i.keyword == "COPY"]
    assert "${COMMON_DIR}/ ./function/common/" in copies
    assert arg_defaults(dockerfile(), "build")["COMMON_DIR"] == "function/common"
    assert "./common" in stack()["configuration"]["copy"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_faas_cli_build_context_has_every_copy_source(function: str, tmp_path: Path) -> None:
    """In the context faas-cli shrink-wraps, every COPY source of the Dockerfile exists with the ARG defaults."""
    context = shrinkwrap(function, tmp_path)
    assert (context / "function" / "handler.py").is_file()
    assert (context / "function" / "common" / "config.py").is_file()
    for source in copy_sources(dockerfile(context / "Dockerfile"), {}):
        assert (context / source).exists(), f"COPY source {source} missing from the faas-cli build context"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_handler_loads_from_the_faas_cli_layout(function: str, tmp_path: Path) -> None:
    """functions-framework loads function/handler.py of the shrink-wrapped context, importing common from function/."""
    context = shrinkwrap(function, tmp_path)
    probe = (
        "import functions_framework, sys\n"
        "functions_framework.create_app('handle', 'function/handler.py')\n"
        "print(sys.modules['common'].__file__)\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root")}
    result = subprocess.run([sys.executable, "-c", probe], cwd=context, env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).resolve().is_relative_to((context / "function" / "common").resolve())


def test_template_build_time_tests_pass_in_the_faas_cli_layout(tmp_path: Path) -> None:
    """The tests the image's test stage runs (template_test.py) pass here against the shrink-wrapped context."""
    context = shrinkwrap("upload", tmp_path)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "template_test.py"],
                            cwd=context, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def requirement_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def pins(path: Path) -> dict[str, str]:
    """{normalised package name: version} of a requirements file's own `name==version` lines."""
    found = {}
    for line in requirement_lines(path):
        if "==" in line:
            name, _, version = line.partition("==")
            found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def test_function_pins_live_in_the_template_alone() -> None:
    """The template's requirements.txt is complete by itself (the image installs it with no other file) and the
    root requirements.txt takes it with -r instead of pinning any of its packages a second time."""
    template = pins(TEMPLATE / "requirements.txt")
    assert template and all("==" in line for line in requirement_lines(TEMPLATE / "requirements.txt"))
    root = requirement_lines(REPO / "requirements.txt")
    assert "-r template/python3-ocr/requirements.txt" in root
    assert not set(template) & set(pins(REPO / "requirements.txt"))


def test_pyproject_dependencies_are_the_pinned_packages() -> None:
    """pyproject.toml names exactly the packages the requirement files pin: none unpinned, none left out."""
    declared = {re.sub(r"[-_.]+", "-", name).lower()
                for name in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    pinned = set(pins(TEMPLATE / "requirements.txt")) | set(pins(REPO / "requirements.txt"))
    assert declared == pinned


def test_test_stage_pytest_matches_requirements_dev() -> None:
    """The image's test stage installs the pytest version requirements-dev.txt pins."""
    dev = (REPO / "requirements-dev.txt").read_text()
    wanted = re.search(r"^pytest==(\S+)", dev, re.MULTILINE)
    assert wanted is not None
    assert arg_defaults(dockerfile(), "test")["PYTEST_VERSION"] == wanted.group(1)
