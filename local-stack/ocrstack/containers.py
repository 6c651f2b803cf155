"""The container runtime's podman side: function images built from the template, and how a function's container runs.

Facts of this machine's podman (Debian's 4.3.1) that every call follows: runc (crun fails on hybrid cgroup
hierarchies), lowered ulimits, no registry (base images are local: `local-stack/bootstrap --containers`),
`--no-healthcheck` on runs (podman would log systemd errors for the image's HEALTHCHECK timer).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocrstack.services import ServiceError, cache_dir, openfaas_tool, tools_bin

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
# Every image (and every stage's intermediate image: buildah labels them all) the project's builds make, through
# build_image or the `docker` shim faas-cli uses, carries this label; pruning touches nothing without it.
BUILD_LABEL = "ocr-pipeline.build"
# The template's test stage labels its images so: no tag keeps them, yet the current one is worth keeping.
STAGE_LABEL = "ocr-pipeline.stage"
# The named build context the template's Dockerfile takes its wheels from (`FROM scratch AS wheelhouse`).
WHEELHOUSE_CONTEXT = "wheelhouse"


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


def docker_shim() -> Path:
    """The `docker` local-stack/bootstrap-containers writes for faas-cli (podman underneath): put its folder first
    on PATH for `faas-cli build` and `faas-cli up`."""
    return tools_bin() / "docker"


def bootstrap(repo_root: Path) -> None:
    """Install and build what the container runtime needs (idempotent; seconds when all is there)."""
    script = Path(repo_root) / "local-stack" / "bootstrap-containers"
    done = subprocess.run([str(script)], capture_output=True, text=True, check=False, timeout=1800)
    if done.returncode != 0:
        raise ServiceError(f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


@contextlib.contextmanager
def images_lock() -> Iterator[None]:
    """One image build or prune at a time across bootstraps, stacks, test runs and the docker shim (the same
    lock file local-stack/bootstrap-containers and the shim take): a prune must not see a running build's
    newest layer, which is untagged until the build's next step."""
    path = cache_dir() / "images.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


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


def build_options(wheels: Path) -> list[str]:
    """The `podman build` options of every project build. local-stack/bootstrap-containers writes the same ones
    into the docker shim for faas-cli, so both share one layer cache: never pull (the base images are local),
    Docker's image format (it keeps HEALTHCHECK), the lowered ulimits, the project's label, and the wheelhouse
    as the named build context the Dockerfile installs from (nothing is added to the build context)."""
    return ["--pull=never", "--format", "docker", *ULIMITS, "--label", f"{BUILD_LABEL}=local-stack",
            "--build-context", f"{WHEELHOUSE_CONTEXT}={wheels}"]


def build_image(context: Path, image: str, log_path: Path | None = None) -> float:
    """podman build of one faas-cli context, installing from the wheelhouse; seconds taken. A failing
    in-build test fails it (ImageBuildError quoting the end of the log)."""
    wheels = wheelhouse()
    if not (wheels / ".complete").is_file():
        raise ImageBuildError(f"no wheelhouse in {wheels}: run ./local-stack/bootstrap --containers")
    started = time.monotonic()
    # faas-cli's build always passes ADDITIONAL_PACKAGE (empty unless asked); the same here, or podman would not
    # share the layers under it between faas-cli's builds and these.
    done = subprocess.run([*PODMAN, "build", *build_options(wheels.resolve()), "--build-arg", "ADDITIONAL_PACKAGE=",
                           "--tag", image, str(context)],
                          capture_output=True, text=True, timeout=1800, check=False)
    seconds = time.monotonic() - started
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        raise ImageBuildError(f"podman build of {image} from {context} failed:\n{tail}")
    return seconds


def stale_images(images: list[dict[str, Any]]) -> list[str]:
    """Of `podman images --all --format json`, the ids of the project's leftovers: images with BUILD_LABEL that
    have no name and no child (a function image a rebuild replaced, the end of a failed build, the test stage of
    code that changed), except the test stage a named image was built with (its build stage is under a named
    image; a rebuild of unchanged code reuses it instead of running the tests again)."""
    parent = {str(i["Id"]): str(i.get("ParentId") or "") for i in images}
    children = set(parent.values())
    labels = {str(i["Id"]): dict(i.get("Labels") or {}) for i in images}

    def lineage(image_id: str) -> Iterator[str]:
        seen: set[str] = set()
        while image_id and image_id in parent and image_id not in seen:
            seen.add(image_id)
            yield image_id
            image_id = parent[image_id]

    under_named: set[str] = set()
    for i in images:
        if i.get("Names"):
            under_named.update(lineage(str(i["Id"])))
    stale = []
    for i in images:
        image_id = str(i["Id"])
        if BUILD_LABEL not in labels[image_id] or i.get("Names") or image_id in children or image_id in under_named:
            continue
        if labels[image_id].get(STAGE_LABEL) == "test":
            base = next((a for a in lineage(image_id) if labels[a].get(STAGE_LABEL) != "test"), "")
            if base in under_named:
                continue
        stale.append(image_id)
    return stale


def list_images() -> list[dict[str, Any]]:
    """`podman images --all` as podman's JSON: Id, ParentId, Names, Labels, Created..."""
    listed = podman("images", "--all", "--format", "json", check=True, timeout=120)
    return list(json.loads(listed.stdout or "[]"))


def stale_build_containers(listed: list[dict[str, Any]], images: list[dict[str, Any]]) -> list[str]:
    """Of `podman ps --all --external --format json`, the working containers (state "storage") an interrupted
    project build left on one of its unnamed labelled layers; they would hold those layers in the store for ever.
    Only meaningful under images_lock, when no project build is running."""
    layers = {str(i["Id"]) for i in images if BUILD_LABEL in (i.get("Labels") or {}) and not i.get("Names")}
    return [str(c["Id"]) for c in listed if c.get("State") == "storage" and str(c.get("ImageID")) in layers]


def prune_images(locked: bool = False) -> list[str]:
    """Remove the project's stale images (stale_images) from podman's store, and the layers under them that
    become stale once they are gone, after the working containers of interrupted project builds that would hold
    them (stale_build_containers); other images and containers are never touched. The image ids removed."""
    with contextlib.nullcontext() if locked else images_lock():
        remaining = list_images()
        listed = podman("ps", "--all", "--external", "--format", "json", check=True, timeout=120)
        leftovers = stale_build_containers(json.loads(listed.stdout or "[]"), remaining)
        if leftovers:
            podman("rm", "--force", *leftovers, timeout=300)
        doomed: list[str] = []
        while stale := stale_images(remaining):
            doomed += stale
            remaining = [i for i in remaining if i["Id"] not in set(stale)]
        if not doomed:
            return []
        # One call, each image before the layer under it (the order they were found in). No --force: an image a
        # container still runs from stays, and so does what is under it.
        podman("rmi", *doomed, timeout=600)
        left = {str(i["Id"]) for i in list_images()}
        return [i for i in doomed if i not in left]


def build_function_images(project: Path, stack_file: Path, images: dict[str, str],
                          log_dir: Path | None = None) -> list[BuiltImage]:
    """Each function of `images` ({function: image}) shrink-wrapped by faas-cli and built with podman, one
    after the other (they share the template's cached layers); then what the builds left behind is pruned."""
    build = shrinkwrap(project, stack_file)
    built = []
    with images_lock():
        try:
            for fn, image in images.items():
                log_path = log_dir / f"build-{fn}.log" if log_dir else None
                built.append(BuiltImage(fn, image, build_image(build / fn, image, log_path)))
        finally:
            try:
                prune_images(locked=True)
            except (ServiceError, subprocess.TimeoutExpired, ValueError):
                pass  # best effort, never in the way of a build's own outcome: the next round prunes again
    return built


def image_size(image: str) -> int:
    done = podman("image", "inspect", "--format", "{{.Size}}", image, check=True)
    return int(done.stdout.strip())
