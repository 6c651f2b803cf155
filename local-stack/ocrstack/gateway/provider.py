"""Functions of stack.yml run as local functions-framework processes, supervised and restarted if they die."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml

from common.logging import get_logger
from ocrstack import containers
from ocrstack.gateway import access, intake
from ocrstack.supervise import die_with_parent
from ocrstack.services import free_port, port_open

log = get_logger()

DEFAULT_EXEC_TIMEOUT = 60.0


def parse_duration(value: object, default: float) -> float:
    """OpenFaaS style: "600s", "10m", "1h", "1m30s" or plain seconds."""
    if value is None or value == "":
        return default
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {value!r}")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


class FunctionStartError(RuntimeError):
    """A function's process exited or never listened; the message quotes the tail of its log."""


# OpenFaaS's scaling labels (stack.yml `labels:`): how many replicas the local gateway runs of a function.
SCALE_MIN = "com.openfaas.scale.min"
SCALE_MAX = "com.openfaas.scale.max"
# The most replicas of one function the local gateway starts, whatever a label asks: each is a process (or a
# container) with its own memory.
MAX_REPLICAS = 8


def replica_count(labels: dict[str, str]) -> int:
    """com.openfaas.scale.min (default 1), no more than com.openfaas.scale.max nor MAX_REPLICAS."""
    def number(name: str, default: int) -> int:
        raw = labels.get(name, "")
        return int(raw) if raw.strip().isdigit() else default

    return max(1, min(number(SCALE_MIN, 1), number(SCALE_MAX, MAX_REPLICAS), MAX_REPLICAS))


@dataclass
class FunctionSpec:
    name: str
    handler: Path | None
    image: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    upstream: str | None = None  # a fixed URL (containers) instead of a local process
    # The fprocess of the function's template (template/<lang>/template.yml beside the stack file), if known:
    # the only envProcess a deployment may send.
    fprocess: str = ""
    # The check the function makes of its callers (access.py), from the stack file only: a deployment cannot
    # change it.
    access: str = "open"
    # The setting that bounds the function's request body (intake.body_limit_of), from the stack file only.
    body_limit: str | None = None

    @property
    def exec_timeout(self) -> float:
        return parse_duration(self.environment.get("exec_timeout"), DEFAULT_EXEC_TIMEOUT)


def template_fprocess(stack_dir: Path, lang: str) -> str:
    """fprocess of template/<lang>/template.yml next to the stack file, as faas-cli deploy reads it; "" if none."""
    if not lang or "/" in lang or lang.startswith("."):
        return ""
    try:
        data = yaml.safe_load((stack_dir / "template" / lang / "template.yml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return ""
    return str(data.get("fprocess") or "") if isinstance(data, dict) else ""


def load_stack(path: Path) -> dict[str, FunctionSpec]:
    """The functions of a faas-cli stack file; handler folders are relative to the file."""
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a stack file (a YAML mapping with `functions`)")
    specs: dict[str, FunctionSpec] = {}
    for name, fn in (data.get("functions") or {}).items():
        fn = fn or {}
        annotations = {str(k): str(v) for k, v in (fn.get("annotations") or {}).items()}
        specs[name] = FunctionSpec(
            name=name,
            handler=(path.parent / str(fn.get("handler", name))).resolve(),
            image=str(fn.get("image", "")),
            environment={str(k): str(v) for k, v in (fn.get("environment") or {}).items()},
            labels={str(k): str(v) for k, v in (fn.get("labels") or {}).items()},
            annotations=annotations,
            fprocess=template_fprocess(path.parent, str(fn.get("lang") or "")),
            access=access.access_of(annotations),
            body_limit=intake.body_limit_of(annotations),
        )
    return specs


def read_function_env(path: Path) -> dict[str, str]:
    """The --function-env file: one JSON object of variables, which win over stack.yml's `environment`."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of environment variables")
    return {str(k): "" if v is None else str(v) for k, v in data.items()}


START_EVENT = "function.started"


def start_marker(name: str, instance: str) -> bytes:
    """The gateway's JSON line opening each process start in a function's log file."""
    stamp = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    line = {"event": START_EVENT, "function": name, "instance": instance, "service": "gateway", "level": "info",
            "timestamp": stamp}
    return (json.dumps(line) + "\n").encode()


class FunctionProcess:
    """One replica of a function: a functions-framework server on a private 127.0.0.1 port."""

    def __init__(self, spec: FunctionSpec, repo_root: Path, extra_env: dict[str, str], log_dir: Path,
                 replica: int = 0) -> None:
        self.spec = spec
        self.replica = replica
        self.repo_root = repo_root
        self.extra_env = extra_env
        self.log_path = log_dir / f"{spec.name}.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        # Set when a deployment replaces it: the supervisor leaves it to stop.
        self.retired = False
        # What /system/logs calls the replica: one per process start, as a pod or container name would be.
        self.instance = ""

    @property
    def url(self) -> str:
        return self.spec.upstream or f"http://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        assert self.spec.handler is not None
        self.port = free_port()
        env = dict(os.environ)
        env.update(self.spec.environment)
        env.update(self.extra_env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.instance = f"{self.spec.name}-{secrets.token_hex(4)}"
        with self.log_path.open("ab") as out:
            # The marker /system/logs reads the instance (and a first timestamp) from; the function's own
            # lines follow it in the same append-only file.
            out.write(start_marker(self.spec.name, self.instance))
            out.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "functions_framework", "--target", "handle",
                 "--source", str(self.spec.handler / "handler.py"), "--host", "127.0.0.1", "--port", str(self.port)],
                env=env, cwd=self.repo_root, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                # Its own group, so a stop reaches its workers too; and it dies with the gateway, so a
                # crashed gateway leaves no function holding a port or memory.
                start_new_session=True, preexec_fn=die_with_parent(),
            )
        log.info("function.spawned", function=self.spec.name, port=self.port, pid=self.proc.pid)

    # What a readiness failure calls the function, and how long a start may take (an image starts slower).
    what = "function"
    start_timeout = 60.0

    def answers(self) -> bool:
        """Ready: functions-framework listens on its port."""
        return port_open(self.port)

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not await asyncio.to_thread(self.answers):
            if self.proc is not None and self.proc.poll() is not None:
                raise FunctionStartError(
                    f"{self.what} {self.spec.name} exited with code {self.proc.returncode}: {self._log_tail()}")
            if time.monotonic() > deadline:
                raise FunctionStartError(f"{self.what} {self.spec.name} not answering after "
                                         f"{self.start_timeout:g} s: {self._log_tail()}")
            await asyncio.sleep(0.1)

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def signal_group(self, sig: signal.Signals) -> None:
        """Signal the function's whole process group, so gunicorn's workers go with their master."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass  # the group is already empty: nothing left to stop

    def wait_exit(self, deadline: float) -> bool:
        """Whether the process exited before the (monotonic) deadline."""
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self, grace: float = 10.0) -> bool:
        """SIGTERM the group, SIGKILL it after `grace` seconds; whether the master exited in time."""
        self.signal_group(signal.SIGTERM)
        return self.kill_after(time.monotonic() + grace)

    def kill_after(self, deadline: float) -> bool:
        """The second half of a stop, once SIGTERM was sent: wait until the deadline, then SIGKILL the group.

        The group is killed even after a clean exit of the master: a stray worker must not outlive it.
        Returns whether the master exited before the deadline.
        """
        exited = self.wait_exit(deadline)
        self.signal_group(signal.SIGKILL)
        self.wait_exit(time.monotonic() + 5)
        self.proc = None
        return exited

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return "(no log)"


class ContainerFunction(FunctionProcess):
    """One function as its image under podman: of-watchdog in front of functions-framework, in a network
    namespace of its own (slirp4netns, the host's 127.0.0.1 reached as 10.0.2.2), published on a private
    127.0.0.1 port. `podman run` stays attached: its exit is the container's, its output the function's log."""

    what = "container of"
    start_timeout = 120.0

    def __init__(self, spec: FunctionSpec, repo_root: Path, extra_env: dict[str, str], log_dir: Path,
                 stack: str, replica: int = 0) -> None:
        super().__init__(spec, repo_root, extra_env, log_dir, replica)
        self.stack = stack
        # Replicas after the first get names of their own: ocr-<function>-r<i>-<stack>.
        self.replica_name = spec.name if replica == 0 else f"{spec.name}-r{replica}"
        self.container = containers.container_name(self.replica_name, stack)
        self.env_file = log_dir.parent / "containers" / f"{self.replica_name}.env"

    def spawn(self) -> None:
        self.port = free_port()
        env = dict(self.spec.environment)
        env.update(self.extra_env)
        containers.write_env_file(self.env_file, containers.container_env(env))
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.instance = f"{self.spec.name}-{secrets.token_hex(4)}"
        command = containers.run_command(self.replica_name, self.spec.image, self.port, self.env_file, self.stack)
        with self.log_path.open("ab") as out:
            out.write(start_marker(self.spec.name, self.instance))
            out.flush()
            # SIGTERM when the gateway dies: `podman run` passes it to the container (sig-proxy), which drains
            # and goes (--rm); a SIGKILL would leave the container running without its client.
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, preexec_fn=die_with_parent(signal.SIGTERM))
        log.info("function.spawned", function=self.spec.name, port=self.port, pid=self.proc.pid,
                 container=self.container, image=self.spec.image)

    def answers(self) -> bool:
        """functions-framework answers behind the watchdog: /robots.txt is its own 404, no handler runs (the
        image's healthcheck.py asks the same); the watchdog alone answers 5xx while its upstream starts."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/robots.txt", timeout=1):
                return True
        except urllib.error.HTTPError as e:
            return e.code < 500
        except (urllib.error.URLError, OSError):
            return False


    def signal_group(self, sig: signal.Signals) -> None:
        """SIGTERM: the watchdog drains and stops (its container goes, `--rm`); SIGKILL: the container is removed."""
        if self.proc is None:
            return
        if sig == signal.SIGKILL:
            containers.remove_container(self.container)
            super().signal_group(sig)  # the attached podman client, should it linger
        else:
            containers.podman("kill", "--signal", sig.name, self.container, timeout=30)


class Deployment:
    """A deployed function: its spec and its replicas (com.openfaas.scale.min of them), calls spread across them."""

    def __init__(self, spec: FunctionSpec, replicas: list[FunctionProcess]) -> None:
        self.spec = spec
        self.replicas = replicas
        self._in_flight = [0] * len(replicas)

    def available(self) -> int:
        if self.spec.upstream is not None:
            return 1
        return sum(1 for r in self.replicas if r.proc is not None and r.proc.poll() is None)

    @contextmanager
    def serving(self) -> Iterator[FunctionProcess]:
        """The live replica with the fewest calls in flight (ties: the lowest index), held for one call.

        Least-busy rather than round-robin: an OCR call holds a replica for seconds, and the next call
        should go to one that is free, not to whichever is next in turn.
        """
        live = [i for i, r in enumerate(self.replicas)
                if r.spec.upstream is not None or (r.proc is not None and r.proc.poll() is None)]
        index = min(live or range(len(self.replicas)), key=lambda i: self._in_flight[i])
        self._in_flight[index] += 1
        try:
            yield self.replicas[index]
        finally:
            self._in_flight[index] -= 1

    def stop(self, grace: float = 10.0) -> None:
        for replica in self.replicas:
            replica.retired = True
        for replica in self.replicas:
            replica.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for replica in self.replicas:
            replica.kill_after(deadline)


class Provider:
    """What OpenFaaS's provider does for the gateway: knows the functions and keeps them running.

    runtime "processes" (the default) runs each handler as a local functions-framework process; "containers"
    runs each function that has an image as that image under podman (ContainerFunction)."""

    RUNTIMES = ("processes", "containers")

    def __init__(self, specs: dict[str, FunctionSpec], repo_root: Path, function_env_file: Path | None,
                 log_dir: Path, declared: Callable[[], dict[str, FunctionSpec]] | None = None,
                 runtime: str = "processes", stack: str = "local") -> None:
        if runtime not in self.RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(self.RUNTIMES)}, not {runtime!r}")
        extra = read_function_env(function_env_file) if function_env_file else {}
        self.repo_root, self.extra_env, self.log_dir = repo_root, extra, log_dir
        self.runtime, self.stack = runtime, stack
        # What the stack file declares, read again for every deployment (so a function added to the file, or
        # a changed setting, can be deployed without a restart); without a reader, the functions started with.
        self._declared = declared or (lambda: dict(specs))
        self.functions = {name: self._deployment(spec) for name, spec in specs.items()}
        self.invocations: dict[str, int] = {name: 0 for name in specs}
        self._stopping = False

    def _deployment(self, spec: FunctionSpec) -> Deployment:
        count = 1 if spec.upstream is not None else replica_count(spec.labels)
        return Deployment(spec, [self._function(spec, i) for i in range(count)])

    def _function(self, spec: FunctionSpec, replica: int) -> FunctionProcess:
        if self.runtime == "containers" and spec.image and spec.upstream is None:
            return ContainerFunction(spec, self.repo_root, self.extra_env, self.log_dir, self.stack, replica)
        return FunctionProcess(spec, self.repo_root, self.extra_env, self.log_dir, replica)

    def replicas(self) -> list[FunctionProcess]:
        return [replica for deployment in self.functions.values() for replica in deployment.replicas]

    def declared(self, name: str) -> FunctionSpec | None:
        """The stack file's function of that name: the only code a deployment can start (OSError or
        ValueError if the stack file cannot be read)."""
        return self._declared().get(name)

    def log_path(self, name: str) -> Path:
        """The file a function's output goes to (append-only, across restarts and redeployments)."""
        return self.log_dir / f"{name}.log"

    async def deploy(self, spec: FunctionSpec) -> None:
        """Start (or restart with the new settings) one function, as faas-cli deploy asks."""
        old = self.functions.get(spec.name)
        if old is not None:
            # In a thread: a container's stop waits for the watchdog's drain (seconds); the gateway keeps serving.
            await asyncio.to_thread(old.stop)
        deployment = self._deployment(spec)
        self.functions[spec.name] = deployment
        self.invocations.setdefault(spec.name, 0)
        if spec.upstream is None:
            for replica in deployment.replicas:
                replica.spawn()
            await asyncio.gather(*(replica.wait_ready() for replica in deployment.replicas))
        log.info("function.deployed", function=spec.name, image=spec.image, replicas=len(deployment.replicas))

    def remove(self, name: str) -> bool:
        deployment = self.functions.pop(name, None)
        if deployment is None:
            return False
        deployment.stop()
        log.info("function.removed", function=name)
        return True

    def get(self, name: str) -> Deployment | None:
        return self.functions.get(name)

    async def start(self) -> None:
        local = [fn for fn in self.replicas() if fn.spec.upstream is None]
        for fn in local:
            fn.spawn()
        await asyncio.gather(*(fn.wait_ready() for fn in local))

    async def supervise(self) -> None:
        """Restart a function whose process died, as a container orchestrator would."""
        while not self._stopping:
            await asyncio.sleep(1.0)
            # A copy: deploy and remove may change the set while a restart is awaited.
            for fn in self.replicas():
                if fn.spec.upstream is None and fn.exited() and not self._stopping and not fn.retired:
                    code = fn.proc.returncode if fn.proc else None
                    log.warning("function.exited", function=fn.spec.name, returncode=code, restarts=fn.restarts)
                    # Workers of the dead master would keep the old port and memory: end them first (for a
                    # container, podman removes what is left of it).
                    await asyncio.to_thread(fn.signal_group, signal.SIGKILL)
                    fn.restarts += 1
                    fn.spawn()
                    try:
                        await fn.wait_ready()
                    except FunctionStartError as e:
                        log.error("function.restart_failed", function=fn.spec.name, error=str(e))

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every function group at once, SIGKILL what is left after `grace` seconds; idempotent."""
        self._stopping = True
        running = [fn for fn in self.replicas() if fn.proc is not None]
        # All SIGTERMs first, so the functions shut down side by side within one grace period.
        for fn in running:
            fn.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for fn in running:
            if not fn.kill_after(deadline):
                log.warning("function.killed", function=fn.spec.name, grace_s=grace)
