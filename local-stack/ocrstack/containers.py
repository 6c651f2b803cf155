"""The container runtime's podman side: function images built from the template, and how a function's container runs.

Facts of this machine's podman (Debian's 4.3.1) that every call follows: runc (crun fails on hybrid cgroup
hierarchies), lowered ulimits, no registry (base images are local: `local-stack/bootstrap --containers`),
`--no-healthcheck` on runs (podman would log systemd errors for the image's HEALTHCHECK timer).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ocrstack.services import ServiceError, cache_dir, openfaas_tool

PODMAN = ["podman", "--runtime", "runc"]
ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
# slirp4netns gives each container its own network namespace; allow_host_loopback lets it reach the host's
# 127.0.0.1 (where MariaDB, Redis, MinIO and the gateway listen) as 10.0.2.2.
NETWORK = "slirp4netns:allow_host_loopback=true"
HOST_LOOPBACK = "10.0.2.2"
# The port of-watchdog listens on inside the image.
WATCHDOG_PORT = 8080
# Where a function's settings name the host's services: what changes inside a container.
HOST_ADDRESS_VARIABLES = ("MYSQL_HOST", "REDIS_URL", "S3_ENDPOINT", "GATEWAY_URL")
# Variables of the local stack that name paths of the host: a container has none of them.
HOST_PATH_VARIABLES = ("SECRETS_DIR",)
LABEL = "ocr-pipeline.stack"


class ImageBuildError(ServiceError):
    """A function image did not build (a failing in-build test among the reasons); the message quotes the log."""


def podman_available() -> bool:
    return shutil.which("podman") is not None


def stack_id(state_dir: Path) -> str:
    """A short name for one stack (its state folder), in its containers' names and labels."""
    return hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()[:8]


def container_name(function: str, stack: str) -> str:
    return f"ocr-{function}-{stack}"


def container_env(env: dict[str, str]) -> dict[str, str]:
    """A function's environment as its container sees it: the host's 127.0.0.1 is 10.0.2.2 there, and
    host paths are left out (secrets come from the variables; /var/openfaas/secrets is empty)."""
    out = {k: v for k, v in env.items() if k not in HOST_PATH_VARIABLES}
    for key in HOST_ADDRESS_VARIABLES:
        if key in out:
            out[key] = out[key].replace("127.0.0.1", HOST_LOOPBACK).replace("localhost", HOST_LOOPBACK)
    return out


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """podman's --env-file (KEY=VALUE lines), private to its owner: secrets stay off command lines."""
    for key, value in env.items():
        if "\n" in value or "=" in key or not key:
            raise ValueError(f"variable {key!r} cannot be passed in an env file")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write("".join(f"{k}={v}\n" for k, v in env.items()))


def run_command(name: str, image: str, port: int, env_file: Path, stack: str) -> list[str]:
    """`podman run` of one function, attached (its output is the function's log), removed when it stops;
    published on 127.0.0.1 only."""
    return [*PODMAN, "run", "--rm", "--replace", "--name", container_name(name, stack),
            "--label", f"{LABEL}={stack}", "--network", NETWORK,
            "--publish", f"127.0.0.1:{port}:{WATCHDOG_PORT}", *ULIMITS, "--no-healthcheck",
            "--env-file", str(env_file), "--stop-timeout", "10", image]


def podman(*args: str, timeout: float = 60.0, check: bool = False) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise ServiceError(f"podman {' '.join(args)}: {done.stderr.strip()}")
    return done


def remove_container(name: str) -> None:
    """Stop (SIGKILL) and remove a container if it exists."""
    podman("rm", "--force", "--ignore", "--time", "0", name, timeout=60)


def remove_stack_containers(stack: str) -> list[str]:
    """Every container of one stack (by label), removed; their names."""
    listed = podman("ps", "--all", "--filter", f"label={LABEL}={stack}", "--format", "{{.Names}}")
    names = [n for n in listed.stdout.split() if n]
    for name in names:
        remove_container(name)
    return names


# --- images ----------------------------------------------------------------------------------------

def wheelhouse() -> Path:
    """The wheels local-stack/bootstrap-containers fetched for the image's Python."""
    return cache_dir() / "wheelhouse"


def bootstrap(repo_root: Path) -> None:
    """Install and build what the container runtime needs (idempotent; seconds when all is there)."""
    script = Path(repo_root) / "local-stack" / "bootstrap-containers"
    done = subprocess.run([str(script)], capture_output=True, text=True, check=False, timeout=1800)
    if done.returncode != 0:
        raise ServiceError(f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


@dataclass(frozen=True)
class BuiltImage:
    function: str
    image: str
    seconds: float


def shrinkwrap(project: Path, stack_file: Path) -> Path:
    """`faas-cli build --shrinkwrap`: a build/<fn>/ context per function under the project folder (where
    template/ is; a fraction of a second for all of them)."""
    args = [str(openfaas_tool("faas-cli")), "build", "--shrinkwrap", "-f", str(stack_file)]
    done = subprocess.run(args, cwd=project, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise ImageBuildError(f"faas-cli build --shrinkwrap failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return project / "build"


def build_image(context: Path, image: str, log_path: Path | None = None) -> float:
    """podman build of one faas-cli context, installing from the wheelhouse; seconds taken. A failing
    in-build test fails it (ImageBuildError quoting the end of the log)."""
    wheels = wheelhouse()
    if not (wheels / ".complete").is_file():
        raise ImageBuildError(f"no wheelhouse in {wheels}: run ./local-stack/bootstrap --containers")
    target = context / "wheelhouse"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    for wheel in wheels.resolve().glob("*.whl"):
        try:
            os.link(wheel, target / wheel.name)
        except OSError:
            shutil.copy2(wheel, target / wheel.name)
    started = time.monotonic()
    done = subprocess.run(
        [*PODMAN, "build", "--pull=never", "--format", "docker", *ULIMITS, "--build-arg", "PIP_WHEELHOUSE=wheelhouse",
         "--tag", image, str(context)],
        capture_output=True, text=True, timeout=1800, check=False)
    seconds = time.monotonic() - started
    shutil.rmtree(target, ignore_errors=True)
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        raise ImageBuildError(f"podman build of {image} from {context} failed:\n{tail}")
    return seconds


def build_function_images(project: Path, stack_file: Path, images: dict[str, str],
                          log_dir: Path | None = None) -> list[BuiltImage]:
    """Each function of `images` ({function: image}) shrink-wrapped by faas-cli and built with podman, one
    after the other (they share the template's cached layers)."""
    build = shrinkwrap(project, stack_file)
    built = []
    for fn, image in images.items():
        log_path = log_dir / f"build-{fn}.log" if log_dir else None
        built.append(BuiltImage(fn, image, build_image(build / fn, image, log_path)))
    return built


def image_size(image: str) -> int:
    done = podman("image", "inspect", "--format", "{{.Size}}", image, check=True)
    return int(done.stdout.strip())
