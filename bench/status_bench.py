"""Status reads through the function server: Redis cache hit against the MySQL path, and the cost of the
API key check, side by side.

Run from the repository root: ./local-stack/bootstrap && .venv/bin/python -m bench.status_bench [--requests 3000]

Starts its own stack on free ports, then four extra `status` function servers on the same backing
services: the cache on (every read after the first is a hit), the same with AUTH=off (no key check), the
same with rate limits on that no request reaches (what the bucket's round trip adds), and STATUS_CACHE=false
(every read goes to MySQL); and with wrk a function that answers a constant: the server's own ceiling on
this machine. The other servers run without rate limits, so their figures are the read path alone. Figures
are printed as they are measured. `--concurrency 16` is the issue's measuring point.

The servers run as stack.yml deploys the status function (FUNCTION_USE_ASGI, WORKERS, THREADS: what
functions-framework reads); a last table runs the cache hit, the MySQL path and the constant function on
functions-framework's sync server under several settings, its default first, and on its ASGI server (the
event loop of common/web/loop.py), one after the other in the same run, so the choice in stack.yml can be
checked on the day's machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import urllib3
import yaml

from ocrstack.stack import LocalStack, StackPorts
from tests.support import Gateway, image_bytes

REPO = Path(__file__).resolve().parent.parent


# The servers compared in the last table: functions-framework's sync server (Flask under gunicorn) as
# processes x threads, its default (1 process, 4 threads per core) first, and its ASGI server (uvicorn, one
# event loop per process: common/web/loop.py), which stack.yml deploys status with.
_DEFAULT_THREADS = str(4 * (os.cpu_count() or 1))
SERVER_SETTINGS = (
    (f"sync 1 x {_DEFAULT_THREADS}", {"WORKERS": "1", "THREADS": _DEFAULT_THREADS}),
    ("sync 2 x 1", {"WORKERS": "2", "THREADS": "1"}),
    ("sync 2 x 4", {"WORKERS": "2", "THREADS": "4"}),
    ("loop x 2", {"FUNCTION_USE_ASGI": "true", "WORKERS": "2"}),
    ("loop x 3", {"FUNCTION_USE_ASGI": "true", "WORKERS": "3"}),
)
SERVER_VARIABLES = ("FUNCTION_USE_ASGI", "WORKERS", "THREADS")


def status_server_settings() -> dict[str, str]:
    """The server variables stack.yml deploys the status function with (functions-framework reads them)."""
    environment = yaml.safe_load((REPO / "stack.yml").read_text())["functions"]["status"].get("environment") or {}
    return {name: str(environment[name]) for name in SERVER_VARIABLES if name in environment}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The server's own floor: a function that answers constant JSON with no Redis, key check or logging, on
# either server.
FLOOR_FUNCTION = """import os

import flask
from starlette.responses import Response

BODY = b'{"status":"completed"}'

if os.environ.get("FUNCTION_USE_ASGI") == "true":
    async def handle(request):
        return Response(BODY, media_type="application/json")
else:
    def handle(request):
        return flask.Response(BODY, mimetype="application/json")
"""


def start_status_server(env: dict[str, str], log: Path,
                        source: Path = REPO / "functions/status/handler.py") -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "functions_framework", "--target", "handle",
         "--source", str(source), "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"status server did not start; see {log}")


@contextlib.contextmanager
def warm_status_server(env: dict[str, str], log: Path, job_id: str, key: dict[str, str],
                       concurrency: int) -> Iterator[str]:
    """A status server, warmed with 2 s of wrk on the job: its URL of the job's status."""
    proc, url = start_status_server(env, log)
    try:
        hammer_wrk(f"{url}/{job_id}", 2, concurrency, key)
        yield f"{url}/{job_id}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def hammer(url: str, requests: int, concurrency: int, headers: dict[str, str]) -> tuple[float, list[float], str]:
    """Requests/s and per-request latencies (ms) with `concurrency` keep-alive clients."""
    http = urllib3.PoolManager(maxsize=concurrency, headers=headers)
    latencies: list[float] = []
    cache_header = ""

    def one(_: int) -> float:
        nonlocal cache_header
        t = time.perf_counter()
        r = http.request("GET", url)
        assert r.status == 200, r.data
        cache_header = r.headers.get("X-Cache", "")
        return (time.perf_counter() - t) * 1000

    for _ in range(50):  # warm-up: connections, imports, the first miss that fills the cache
        one(0)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        latencies = list(pool.map(one, range(requests)))
    return requests / (time.perf_counter() - started), latencies, cache_header


def _wrk(url: str, seconds: int, concurrency: int, headers: dict[str, str]) -> str:
    extra = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    return subprocess.run(["wrk", f"-t{min(2, concurrency)}", f"-c{concurrency}", f"-d{seconds}s", "--latency", *extra,
                           url], capture_output=True, text=True, check=True).stdout


def hammer_wrk(url: str, seconds: int, concurrency: int, headers: dict[str, str]) -> tuple[float, float, float]:
    """Requests/s, p50 and p99 (ms) measured by wrk: a C client, so the server, not the client, is measured."""
    out = _wrk(url, seconds, concurrency, headers)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def ms(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        if found is None:
            raise SystemExit(f"no {label}th percentile in wrk's output:\n{out}")
        value, unit = found.groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]

    if re.search(r"Non-2xx", out):
        raise SystemExit(f"wrk saw error answers:\n{out}")
    return rps, ms("50"), ms("99")


def slowest_wrk(url: str, seconds: int, concurrency: int, headers: dict[str, str]) -> tuple[float, float, float]:
    """Requests/s, p99 and the slowest request (ms) measured by wrk."""
    out = _wrk(url, seconds, concurrency, headers)
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
    latency = re.search(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)\s", out, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if latency is None or p99 is None or rps is None:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    return (float(rps.group(1)), float(p99.group(1)) * units[p99.group(2)],
            float(latency.group(1)) * units[latency.group(2)])


def make_text_large(settings: Any, job_id: str, kilobytes: int) -> None:
    """Give a completed job the text of a long document (about a page per 2 kB), as MySQL then the cache hold it."""
    from sqlalchemy import select, update

    from common.adapters import cache
    from common.adapters.db import Job, session_scope

    line = "Rechnung 4711 vom Büro: total amount due 1.234,56 EUR, payable within 30 days.\n"
    text = (line * (kilobytes * 1024 // len(line) + 1))[: kilobytes * 1024]
    with session_scope(settings) as session:
        session.execute(update(Job).where(Job.id == job_id).values(text=text, version=Job.version + 1))
        version = session.execute(select(Job.version).where(Job.id == job_id)).scalar_one()
    cache.mark_changed(settings, job_id, version)


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1]


def key_check_cost(settings: Any, token: str, rounds: int = 2000) -> tuple[float, float]:
    """p50 and p99 (ms) of authenticate() alone on a cached key, in this process: the check's own price."""
    import flask

    from common.web import auth

    app = flask.Flask("bench", root_path=str(REPO))  # bench/ is a namespace package: no root of its own
    with app.test_request_context("/", headers={"Authorization": f"Bearer {token}"}):
        for _ in range(50):
            auth.authenticate(flask.request, settings)
        took = []
        for _ in range(rounds):
            t = time.perf_counter()
            auth.authenticate(flask.request, settings)
            took.append((time.perf_counter() - t) * 1000)
    return percentile(took, 50), percentile(took, 99)


def compare_server_settings(env: dict[str, str], job_id: str, key: dict[str, str], concurrency: int,
                            folder: Path) -> None:
    """The cache hit, the MySQL path and the constant function on each server of SERVER_SETTINGS, wrk 10 s each."""
    print(f"\nservers, wrk, {concurrency} connections, 10 s each", flush=True)
    print(f"{'':16}{'hit req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'MySQL req/s':>13}{'hit/MySQL':>11}{'floor req/s':>13}",
          flush=True)
    for label, server in SERVER_SETTINGS:
        settings = {name: value for name, value in env.items() if name not in SERVER_VARIABLES}
        settings.update(server)
        hit, hit_url = start_status_server(dict(settings, STATUS_CACHE="true"), folder / f"hit-{label}.log")
        mysql, mysql_url = start_status_server(dict(settings, STATUS_CACHE="false"), folder / f"mysql-{label}.log")
        floor, floor_url = start_status_server(settings, folder / f"floor-{label}.log", folder / "floor.py")
        try:
            # Warm first, as the tables above are (each process's first requests import and connect).
            for url, headers in ((hit_url, key), (mysql_url, key), (floor_url, {})):
                hammer_wrk(f"{url}/{job_id}", 2, concurrency, headers)
            rps, w50, w99 = hammer_wrk(f"{hit_url}/{job_id}", 10, concurrency, key)
            mysql_rps, _, _ = hammer_wrk(f"{mysql_url}/{job_id}", 10, concurrency, key)
            floor_rps, _, _ = hammer_wrk(f"{floor_url}/{job_id}", 10, concurrency, {})
        finally:
            for proc in (hit, mysql, floor):
                proc.terminate()
                proc.wait(timeout=10)
        print(f"{label:16}{rps:>10.0f}{w50:>9.2f}{w99:>9.2f}{mysql_rps:>13.0f}{rps / mysql_rps:>10.2f}x"
              f"{floor_rps:>13.0f}", flush=True)


def compare_loop_threads(env: dict[str, str], job_id: str, key: dict[str, str], concurrency: int,
                         folder: Path) -> None:
    """The MySQL path on the event loop with 1, 2, 4 and 6 threads for the reads that wait (LOOP_THREADS)."""
    print(f"\nthe MySQL path on the event loop by LOOP_THREADS, wrk, {concurrency} connections, 10 s each", flush=True)
    print(f"{'':16}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}", flush=True)
    for threads in (1, 2, 4, 6):
        settings = dict(env, FUNCTION_USE_ASGI="true", WORKERS="2", STATUS_CACHE="false", LOOP_THREADS=str(threads))
        with warm_status_server(settings, folder / f"loop-threads-{threads}.log", job_id, key, concurrency) as url:
            rps, w50, w99 = hammer_wrk(url, 10, concurrency, key)
        print(f"{f'{threads} threads':16}{rps:>10.0f}{w50:>9.2f}{w99:>9.2f}", flush=True)


def key_expiry(env: dict[str, str], job_id: str, key: dict[str, str], concurrency: int, folder: Path) -> None:
    """Hits with rate limits on while the key's cached record expires every 5 s: the slowest request shows
    what a refill costs the requests in flight (one per process reads MySQL, the others wait for it)."""
    settings = dict(env, STATUS_CACHE="true", AUTH_CACHE_SECONDS="5", RATE_LIMIT_CAPACITY="1000000000",
                    RATE_LIMIT_REFILL_PER_SECOND="1000000")
    print(f"\nthe caller's key record expiring every 5 s (AUTH_CACHE_SECONDS=5), rate limits on, wrk, "
          f"{concurrency} connections, 20 s", flush=True)
    with warm_status_server(settings, folder / "key-expiry.log", job_id, key, concurrency) as url:
        rps, w99, slowest = slowest_wrk(url, 20, concurrency, key)
    print(f"{'cache hit':16}{rps:>10.0f} req/s, p99 {w99:.2f} ms, slowest {slowest:.1f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--text-kb", type=int, default=100, help="text of the second job (a long document)")
    args = parser.parse_args()

    from common.config import load_settings
    from common.rules import apikeys

    with tempfile.TemporaryDirectory(prefix="status-bench-") as tmp:
        folder = Path(tmp)
        stack = LocalStack(folder / "stack", StackPorts.free(), REPO)
        servers: list[subprocess.Popen[bytes]] = []
        print(f"starting a local stack in {folder / 'stack'} ...", flush=True)
        stack.start()
        try:
            settings = load_settings(stack.function_env())
            token = apikeys.create(settings, "status-bench").token
            key = {"Authorization": f"Bearer {token}"}
            gateway = Gateway(stack.gateway_url, api_key=token)
            job_id = gateway.upload(image_bytes(["STATUS bench"]), "bench.png").json()["job_id"]
            large_id = gateway.upload(image_bytes(["STATUS bench large"]), "large.png").json()["job_id"]
            gateway.wait_final(job_id)
            gateway.wait_final(large_id)
            make_text_large(settings, large_id, args.text_kb)
            server = status_server_settings()
            base = dict(os.environ, **stack.function_env(), **server, RATE_LIMIT_CAPACITY="0",
                        LOG_LEVEL="WARNING")
            print(f"status servers as stack.yml deploys them: {server or 'functions-framework defaults'}", flush=True)
            variants = {
                "cache hit, key": (dict(base, STATUS_CACHE="true"), key),
                "cache hit, AUTH=off": (dict(base, STATUS_CACHE="true", AUTH="off"), {}),
                # Limits on, never reached: what the bucket's round trip (the EVAL) adds to a hit.
                "cache hit, key, limits": (dict(base, STATUS_CACHE="true", RATE_LIMIT_CAPACITY="1000000000",
                                                RATE_LIMIT_REFILL_PER_SECOND="1000000"), key),
                "MySQL, key": (dict(base, STATUS_CACHE="false"), key),
            }
            urls = {}
            for n, (name, (env, _)) in enumerate(variants.items()):
                proc, urls[name] = start_status_server(env, folder / f"server-{n}.log")
                servers.append(proc)
            (folder / "floor.py").write_text(FLOOR_FUNCTION)
            proc, floor_url = start_status_server(base, folder / "server-floor.log", folder / "floor.py")
            servers.append(proc)

            p50, p99 = key_check_cost(settings, token)
            print(f"\nthe key check alone (common.auth.authenticate, key cached in Redis): p50 {p50:.3f} ms, "
                  f"p99 {p99:.3f} ms", flush=True)

            print(f"\nGET status of one completed job, {args.requests} requests, {args.concurrency} concurrent "
                  "clients (Python client: it shares the 2 cores and caps the rate)", flush=True)
            print(f"{'':22}{'X-Cache':>9}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}", flush=True)
            results = {}
            for name, (_, headers) in variants.items():
                rps, lat, header = results[name] = hammer(f"{urls[name]}/{job_id}", args.requests, args.concurrency,
                                                          headers)
                print(f"{name:22}{header:>9}{rps:>10.0f}{percentile(lat, 50):>9.2f}{percentile(lat, 99):>9.2f}",
                      flush=True)
            print(f"hit / MySQL throughput: {results['cache hit, key'][0] / results['MySQL, key'][0]:.2f}x", flush=True)

            if shutil.which("wrk"):
                print(f"\nthe same with wrk (C client), 10 s each, {args.concurrency} connections", flush=True)
                print(f"{'':22}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}", flush=True)
                wrk = {}
                for name, (_, headers) in variants.items():
                    rps, w50, w99 = wrk[name] = hammer_wrk(f"{urls[name]}/{job_id}", 10, args.concurrency, headers)
                    print(f"{name:22}{rps:>10.0f}{w50:>9.2f}{w99:>9.2f}", flush=True)
                print(f"hit / MySQL throughput: {wrk['cache hit, key'][0] / wrk['MySQL, key'][0]:.2f}x", flush=True)
                large = {}
                for name in ("cache hit, key", "MySQL, key"):
                    # Warmed first, as the rest: the first reads after the text changed are misses, all at once.
                    hammer_wrk(f"{urls[name]}/{large_id}", 2, args.concurrency, key)
                    rps, w50, w99 = large[name] = hammer_wrk(f"{urls[name]}/{large_id}", 10, args.concurrency, key)
                    print(f"{name + f', {args.text_kb} kB':22}{rps:>10.0f}{w50:>9.2f}{w99:>9.2f}", flush=True)
                print(f"hit / MySQL throughput with {args.text_kb} kB of text: "
                      f"{large['cache hit, key'][0] / large['MySQL, key'][0]:.2f}x", flush=True)
                rps, w50, w99 = hammer_wrk(f"{floor_url}/{job_id}", 10, args.concurrency, {})
                print(f"{'server floor (constant)':22}{rps:>10.0f}{w50:>9.2f}{w99:>9.2f}   the same server, a function "
                      "that does nothing", flush=True)
                # One connection: latency without queueing behind other requests on the 2 cores, so the
                # difference is what the key check itself adds to a request at the function.
                print("\none connection (wrk -c1, 10 s each): what the key check adds to one request", flush=True)
                single = {}
                for name in ("cache hit, key", "cache hit, AUTH=off"):
                    rps, w50, w99 = single[name] = hammer_wrk(f"{urls[name]}/{job_id}", 10, 1, variants[name][1])
                    print(f"{name:22}{rps:>10.0f}{w50:>9.2f}{w99:>9.2f}", flush=True)
                print(f"key check at the function: {single['cache hit, key'][1] - single['cache hit, AUTH=off'][1]:+.2f} "
                      "ms at p50", flush=True)
                compare_server_settings(base, job_id, key, args.concurrency, folder)
                compare_loop_threads(base, job_id, key, args.concurrency, folder)
                key_expiry(base, job_id, key, args.concurrency, folder)
            else:
                print("wrk not installed (apt-get install wrk): only the Python client's figures")
        finally:
            for proc in servers:
                proc.terminate()
                proc.wait(timeout=10)
            stack.stop()


if __name__ == "__main__":
    main()
