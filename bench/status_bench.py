"""Status reads through the function server: Redis cache hit against the MySQL path, side by side.

Run: ./local-stack/bootstrap && PYTHONPATH=.:local-stack .venv/bin/python bench/status_bench.py [--requests 3000]

Starts its own stack on free ports, then two extra `status` function servers on the same backing
services: one with the cache on (every read after the first is a hit), one with STATUS_CACHE=false
(every read goes to MySQL). Rate limits are off for both, so the figures are the read path alone.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import urllib3

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "local-stack")]

from ocrstack.stack import LocalStack, StackPorts  # noqa: E402
from tests.support import Gateway, image_bytes  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_status_server(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "functions_framework", "--target", "handle",
         "--source", str(REPO / "functions/status/handler.py"), "--host", "127.0.0.1", "--port", str(port)],
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


def hammer(url: str, requests: int, concurrency: int) -> tuple[float, list[float], str]:
    """Requests/s and per-request latencies (ms) with `concurrency` keep-alive clients."""
    http = urllib3.PoolManager(maxsize=concurrency)
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


def hammer_wrk(url: str, seconds: int, concurrency: int) -> tuple[float, float, float]:
    """Requests/s, p50 and p99 (ms) measured by wrk: a C client, so the server, not the client, is measured."""
    out = subprocess.run(["wrk", "-t2", f"-c{concurrency}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    if re.search(r"Non-2xx", out):
        raise SystemExit(f"wrk saw error answers:\n{out}")
    return rps, ms("50"), ms("99")


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="status-bench-") as tmp:
        folder = Path(tmp)
        stack = LocalStack(folder / "stack", StackPorts.free(), REPO)
        servers: list[subprocess.Popen[bytes]] = []
        print(f"starting a local stack in {folder / 'stack'} ...", flush=True)
        stack.start()
        try:
            gateway = Gateway(stack.gateway_url)
            job_id = gateway.upload(image_bytes(["STATUS bench"]), "bench.png").json()["job_id"]
            gateway.wait_final(job_id)
            base = dict(os.environ, **stack.function_env(), PYTHONPATH=str(REPO), RATE_LIMIT_CAPACITY="0",
                        LOG_LEVEL="WARNING")
            cached, cached_url = start_status_server(dict(base, STATUS_CACHE="true"), folder / "cached.log")
            servers.append(cached)
            direct, direct_url = start_status_server(dict(base, STATUS_CACHE="false"), folder / "direct.log")
            servers.append(direct)
            results = {
                "cache hit (Redis)": hammer(f"{cached_url}/{job_id}", args.requests, args.concurrency),
                "cache off (MySQL)": hammer(f"{direct_url}/{job_id}", args.requests, args.concurrency),
            }
            wrk = None
            if shutil.which("wrk"):
                wrk = {"cache hit (Redis)": hammer_wrk(f"{cached_url}/{job_id}", 10, args.concurrency),
                       "cache off (MySQL)": hammer_wrk(f"{direct_url}/{job_id}", 10, args.concurrency)}
        finally:
            for proc in servers:
                proc.terminate()
                proc.wait(timeout=10)
            stack.stop()

    print()
    print(f"GET status of one completed job, {args.requests} requests, {args.concurrency} concurrent clients")
    print(f"{'':20}{'X-Cache':>9}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for name, (rps, lat, header) in results.items():
        print(f"{name:20}{header:>9}{rps:>10.0f}{percentile(lat, 50):>9.2f}{percentile(lat, 99):>9.2f}")
    hit, miss = results["cache hit (Redis)"][0], results["cache off (MySQL)"][0]
    print(f"hit / MySQL throughput: {hit / miss:.2f}x  (Python client: it shares the 2 cores and caps the rate)")
    if wrk:
        print()
        print(f"the same with wrk (C client), 10 s each, {args.concurrency} connections")
        print(f"{'':20}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
        for name, (rps, p50, p99) in wrk.items():
            print(f"{name:20}{rps:>10.0f}{p50:>9.2f}{p99:>9.2f}")
        print(f"hit / MySQL throughput: {wrk['cache hit (Redis)'][0] / wrk['cache off (MySQL)'][0]:.2f}x")
    else:
        print("wrk not installed (apt-get install wrk): only the Python client's figures")


if __name__ == "__main__":
    main()
