"""The container runtime's figures: image sizes, build times, container start to first answer, and the
per-request cost of the watchdog hop (status p50 through the gateway, process mode vs containers).

Run from the repository root: ./local-stack/bootstrap --containers && .venv/bin/python -m bench.container_bench

Starts its own stacks on free ports (one in process mode, then one with containers) and stops them. The
image builds are timed as they are here: a cached rebuild of unchanged code, then a rebuild after a change to
common/ (a comment appended to a copy in the build contexts, so the checkout is not touched). A cold build
(no base image, no layer) is timed by removing the images first: `--cold` does that (it deletes the project's
base and function images from podman's store and builds them again, about 3 minutes).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from common.config import load_settings
from common.rules import apikeys
from ocrstack import containers
from ocrstack.services import free_port
from ocrstack.stack import LocalStack, StackPorts
from tests.support import Gateway, image_bytes

REPO = Path(__file__).resolve().parent.parent
BASE_IMAGES = ["python:3.11-slim-bookworm", "ghcr.io/openfaas/of-watchdog:0.11.6"]


def mib(n: int) -> str:
    return f"{n / 1024 / 1024:.0f} MiB"


def timed(label: str, action: object) -> float:
    started = time.monotonic()
    action()  # type: ignore[operator]
    seconds = time.monotonic() - started
    print(f"{label}: {seconds:.1f} s", flush=True)
    return seconds


def images() -> dict[str, str]:
    from ocrstack.gateway.provider import load_stack

    return {name: spec.image for name, spec in load_stack(REPO / "stack.yml").items() if spec.image}


def cold_build() -> None:
    subprocess.run(["podman", "rmi", "--force", *images().values(), *BASE_IMAGES], capture_output=True, check=False)
    subprocess.run(["podman", "image", "prune", "--force"], capture_output=True, check=False)
    timed("cold: bootstrap-containers (base images, wheelhouse)", lambda: containers.bootstrap(REPO))
    timed("cold: five function images", lambda: containers.build_function_images(REPO, REPO / "stack.yml", images()))


def rebuilds() -> None:
    timed("cached rebuild, unchanged code, five images",
          lambda: containers.build_function_images(REPO, REPO / "stack.yml", images()))
    build = containers.shrinkwrap(REPO, REPO / "stack.yml")
    stamp = f"\n# bench {uuid.uuid4().hex}\n"

    def changed() -> None:
        for fn, image in images().items():
            with (build / fn / "function" / "common" / "config.py").open("a") as f:
                f.write(stamp)
            containers.build_image(build / fn, image)

    timed("rebuild after a change to common/, five images (in-build tests run again)", changed)
    # Back to the images of the checkout's code.
    containers.build_function_images(REPO, REPO / "stack.yml", images())


def sizes() -> None:
    for fn, image in images().items():
        print(f"image {fn:12} {image:36} {mib(containers.image_size(image))}")
    for image in BASE_IMAGES:
        print(f"base  {image:49} {mib(containers.image_size(image))}")


def first_answer(image: str) -> float:
    """podman run to the first answer of functions-framework behind the watchdog (/robots.txt, its own 404)."""
    name = f"ocr-bench-{uuid.uuid4().hex[:8]}"
    port = free_port()
    started = time.monotonic()
    subprocess.run([*containers.PODMAN, "run", "-d", "--rm", "--name", name, "--network", containers.NETWORK,
                    "--publish", f"127.0.0.1:{port}:8080", *containers.ULIMITS, "--no-healthcheck",
                    "--env", "AUTH=false", image], capture_output=True, check=True)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/robots.txt", timeout=1).close()
                break
            except urllib.error.HTTPError as e:
                if e.code < 500:
                    break
            except OSError:
                pass
            if time.monotonic() - started > 60:
                raise SystemExit(f"{image}: no answer after 60 s")
            time.sleep(0.05)
        return time.monotonic() - started
    finally:
        containers.remove_container(name)


def starts(rounds: int) -> None:
    for fn, image in images().items():
        runs = sorted(first_answer(image) for _ in range(rounds))
        print(f"container start to first answer, {fn:12} median {statistics.median(runs):.2f} s "
              f"(min {runs[0]:.2f}, max {runs[-1]:.2f}, {rounds} runs)", flush=True)


def status_p50(runtime: str, requests: int) -> None:
    with tempfile.TemporaryDirectory() as state:
        stack = LocalStack(Path(state), StackPorts.free(), REPO, runtime=runtime)
        try:
            stack.start()
            settings = load_settings(stack.function_env())
            client = Gateway(stack.gateway_url, api_key=apikeys.create(settings, "bench", apikeys.Role.ADMIN).token)
            job = client.upload(image_bytes(["BENCH status page"]), "bench.png").json()["job_id"]
            client.wait_final(job)
            for _ in range(10):
                client.status(job)
            time.sleep(1)  # the warm-up's rate-limit tokens back
            timings = []
            for _ in range(requests):
                started = time.perf_counter()
                reply = client.status(job)
                timings.append(time.perf_counter() - started)
                assert reply.status == 200, reply.body
            timings.sort()
            p50, p90 = timings[len(timings) // 2], timings[int(len(timings) * 0.9)]
            print(f"status via the gateway, {runtime:10} p50 {p50 * 1000:.2f} ms, p90 {p90 * 1000:.2f} ms "
                  f"({requests} sequential cache hits)", flush=True)
        finally:
            stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cold", action="store_true", help="remove the images and time a build from nothing")
    parser.add_argument("--requests", type=int, default=150,
                        help="sequential status reads per mode (status allows 200 at once, then 50/s)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    containers.bootstrap(REPO)
    if args.cold:
        cold_build()
    rebuilds()
    sizes()
    starts(args.rounds)
    status_p50("processes", args.requests)
    status_p50("containers", args.requests)


if __name__ == "__main__":
    main()
