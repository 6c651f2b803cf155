"""The upload function's memory and latency: peak RSS after 1 MB and after 50 MB uploads, and p50/p99 of a
one-page image at concurrency 8.

Run from the repository root: .venv/bin/python -m bench.upload_bench [--uploads 5] [--requests 400]

Starts its own stack on free ports, then `upload` function servers (functions-framework, as the template
runs them) on its backing services: one per upload size, so each peak (VmHWM of the server's processes)
belongs to one size alone. Their uploads go under a prefix of their own with no hand-off to the gateway,
so no OCR runs meanwhile: the figures are the upload path alone (read the body, record the rows, store the
original in MinIO). Figures are printed as they are measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import urllib3

from bench.status_bench import start_status_server
from ocrstack.stack import LocalStack, StackPorts
from tests.support import image_bytes

REPO = Path(__file__).resolve().parent.parent
MB = 1_000_000


def document_of(size: int) -> bytes:
    """A body the upload accepts (a PDF by its first bytes) of exactly `size` bytes; OCR never reads it here."""
    block = os.urandom(MB)
    head = b"%PDF-1.4\n"
    body = (block * (size // MB + 1))[: size - len(head)]
    return head + body


def group_of(pid: int) -> list[int]:
    """The server and its children (gunicorn's worker), from /proc."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").iterdir():
            todo += [int(child) for child in (task / "children").read_text().split()]
    return found


def memory_kb(pid: int, field: str) -> int:
    """VmRSS or VmHWM (peak RSS) in kB, the largest over the server's processes."""
    values = []
    for member in group_of(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                values.append(int(line.split()[1]))
    return max(values)


def storage_peak_mb(settings: Any, size: int) -> float:
    """Peak of Python allocations (tracemalloc) while storage.put_document stores `size` bytes from a file."""
    from common.adapters import storage

    with tempfile.TemporaryFile() as source:
        for start in range(0, size, MB):
            source.write(document_of(min(MB, size - start)) if start == 0 else os.urandom(min(MB, size - start)))
        source.seek(0)
        tracemalloc.start()
        storage.put_document(settings, f"bench-uploads/storage-{size}", source, size, "application/pdf", {})
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / MB


def upload(http: urllib3.PoolManager, url: str, token: str, data: bytes, name: str) -> float:
    """One multipart upload; its latency in ms."""
    started = time.perf_counter()
    reply = http.request("POST", url, fields={"file": (name, data, "application/octet-stream")},
                         headers={"Authorization": f"Bearer {token}"})
    if reply.status != 202:
        raise SystemExit(f"upload answered {reply.status}: {reply.data[:300]!r}")
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=5, help="uploads of each size after two warm-up ones")
    parser.add_argument("--requests", type=int, default=400, help="image uploads for the latency figures")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    from common.config import load_settings
    from common.rules import apikeys

    with tempfile.TemporaryDirectory(prefix="upload-bench-") as tmp:
        folder = Path(tmp)
        stack = LocalStack(folder / "stack", StackPorts.free(), REPO)
        servers: list[subprocess.Popen[bytes]] = []
        print(f"starting a local stack in {folder / 'stack'} ...", flush=True)
        stack.start()
        try:
            settings = load_settings(stack.function_env())
            token = apikeys.create(settings, "upload-bench").token
            # No notification (another prefix) and no hand-off (no gateway): nothing OCRs the bench's uploads.
            env = {**os.environ, **stack.function_env(), "RATE_LIMIT_CAPACITY": "0", "LOG_LEVEL": "WARNING",
                   "UPLOAD_PREFIX": "bench-uploads/", "GATEWAY_URL": ""}
            http = urllib3.PoolManager(maxsize=args.concurrency, timeout=urllib3.Timeout(connect=5, read=120))

            print(f"\npeak RSS of an upload server (VmHWM, largest process), {args.uploads} uploads of each size",
                  flush=True)
            print(f"{'upload':>10}{'RSS before MB':>15}{'peak after MB':>15}{'p50 ms':>9}", flush=True)
            peaks = {}
            for size in (1 * MB, 50 * MB):
                proc, url = start_status_server(env, folder / f"upload-{size}.log",
                                                REPO / "functions/upload/handler.py")
                servers.append(proc)
                data = document_of(size)
                small = image_bytes(["warm up"])
                for _ in range(2):  # imports, pools, the first connection to each service
                    upload(http, url, token, small, "warm.png")
                before = memory_kb(proc.pid, "VmRSS")
                took = [upload(http, url, token, data, "big.pdf") for _ in range(args.uploads)]
                peaks[size] = memory_kb(proc.pid, "VmHWM")
                print(f"{size // MB:>7} MB{before / 1024:>15.1f}{peaks[size] / 1024:>15.1f}"
                      f"{statistics.median(took):>9.0f}", flush=True)
            print(f"peak at 50 MB - peak at 1 MB: {(peaks[50 * MB] - peaks[MB]) / 1024:+.1f} MB", flush=True)
            # The store alone, in this process: what the storage adapter holds of a body, apart from reading it.
            storage_peak_mb(settings, MB)  # warm-up: the client, its pool, the first connection
            print("storage.put_document alone (peak of Python allocations): "
                  + ", ".join(f"{size // MB} MB -> {storage_peak_mb(settings, size):.1f} MB" for size in (MB, 50 * MB)),
                  flush=True)

            image = image_bytes(["A one page invoice", "Total 42.00 EUR"])
            proc, url = start_status_server(env, folder / "upload-latency.log", REPO / "functions/upload/handler.py")
            servers.append(proc)
            for _ in range(10):
                upload(http, url, token, image, "page.png")
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
                latencies = list(pool.map(lambda _: upload(http, url, token, image, "page.png"),
                                          range(args.requests)))
            elapsed = time.perf_counter() - started
            cuts = statistics.quantiles(latencies, n=100)
            print(f"\none-page PNG ({len(image) // 1024} kB), {args.requests} uploads at concurrency "
                  f"{args.concurrency}: {args.requests / elapsed:.0f} uploads/s, p50 {cuts[49]:.1f} ms, "
                  f"p99 {cuts[98]:.1f} ms", flush=True)
        finally:
            for proc in servers:
                proc.terminate()
                proc.wait(timeout=10)
            stack.stop()


if __name__ == "__main__":
    main()
