"""One large scanned PDF on ocr-process: 1 replica with 2 workers, 2 replicas with 1 worker each, and the
chunked fan-out over 2 replicas; then a 1,000-page PDF with the fan-out.

Run from the repository root: ./local-stack/bootstrap && .venv/bin/python -m bench.fanout_bench [--pages 64]
    [--large-pages 1000]  (0 skips the large run)

Starts its own stack on free ports and redeploys ocr-process through the gateway's /system API for each
setting (OCR_WORKERS, OCR_CHUNK_PAGES and the com.openfaas.scale.min label), as `faas-cli deploy` would. For
each: the time from upload to `completed`, and the longest single invocation of ocr-process for that job
(read from the function's own log lines), and for the large run the peak memory (VmHWM) of every replica's
worker. Figures are printed as they are measured.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import pikepdf

from bench.pages import scanned_pdf
from ocrstack.stack import LocalStack, StackPorts
from tests.integration.test_supervision import children_of
from tests.support import Gateway

REPO = Path(__file__).resolve().parent.parent


def repeated_pdf(source: bytes, pages: int) -> bytes:
    """`pages` pages cycling through the source's, sharing their image objects: a long document, a small file."""
    with pikepdf.open(io.BytesIO(source)) as pdf:
        originals = list(pdf.pages)
        while len(pdf.pages) < pages:
            pdf.pages.append(originals[len(pdf.pages) % len(originals)])
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()


def deploy(stack: LocalStack, replicas: int, workers: int, chunk_pages: int) -> None:
    system = Gateway(stack.gateway_url, basic_auth=stack.gateway_auth)
    body = {"service": "ocr-process", "image": "ocr-pipeline/ocr-process:latest",
            "envVars": {"OCR_WORKERS": str(workers), "OCR_CHUNK_PAGES": str(chunk_pages)},
            "labels": {"com.openfaas.scale.min": str(replicas)}}
    reply = system.request("PUT", "/system/functions", json=body)
    assert reply.status == 202, reply.body


def longest_call_ms(stack: LocalStack, job_id: str) -> float:
    """The longest ocr-process request that worked on the job, from the function's JSON log lines."""
    longest = 0.0
    for line in (stack.state_dir / "gateway" / "logs" / "ocr-process.log").read_text(errors="replace").splitlines():
        if job_id in line and '"http.request"' in line:
            try:
                longest = max(longest, float(json.loads(line).get("duration_ms") or 0))
            except ValueError:
                continue
    return longest


def replica_workers(stack: LocalStack) -> list[int]:
    """The gunicorn worker of each ocr-process replica (the process that reads the pages)."""
    supervisor = stack.gateway.pid()
    assert supervisor is not None
    [gateway] = children_of(supervisor)
    found = []
    for pid in children_of(gateway):
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if any(arg.endswith(b"functions/ocr-process/handler.py") for arg in argv):
            found.extend(children_of(pid) or [pid])
    return found


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(stack: LocalStack, gateway: Gateway, pdf: bytes, label: str) -> None:
    started = time.monotonic()
    reply = gateway.upload(pdf, "bench.pdf")
    assert reply.status == 202, reply.body
    job_id = reply.json()["job_id"]
    done = gateway.wait_final(job_id, timeout=7200)
    total = time.monotonic() - started
    assert done["status"] == "completed", done
    print(f"{label:44} total {total:8.1f} s   longest invocation {longest_call_ms(stack, job_id) / 1000:7.1f} s   "
          f"pages {done['pages_done']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=64)
    parser.add_argument("--large-pages", type=int, default=1000)
    parser.add_argument("--chunk-pages", type=int, default=8)
    args = parser.parse_args()
    pdf = scanned_pdf(args.pages)
    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as tmp:
        stack = LocalStack(Path(tmp) / "stack", StackPorts.free(), REPO)
        print(f"starting a local stack in {tmp} ...", flush=True)
        stack.start()
        try:
            gateway = Gateway(stack.gateway_url, api_key=stack.admin_key)
            settings: list[tuple[str, int, int, int]] = [
                ("1 replica x 2 workers, not chunked", 1, 2, 0),
                ("2 replicas x 1 worker, not chunked", 2, 1, 0),
                (f"2 replicas x 1 worker, chunks of {args.chunk_pages}", 2, 1, args.chunk_pages),
            ]
            print(f"{args.pages} scanned pages:", flush=True)
            for label, replicas, workers, chunk in settings:
                deploy(stack, replicas, workers, chunk)
                run(stack, gateway, pdf, label)
            if args.large_pages:
                print(f"{args.large_pages} scanned pages (the {args.pages} repeated):", flush=True)
                deploy(stack, 2, 1, args.chunk_pages)  # fresh replicas: their peak memory is this run's
                run(stack, gateway, repeated_pdf(pdf, args.large_pages), f"2 replicas, chunks of {args.chunk_pages}")
                for pid in replica_workers(stack):
                    print(f"  replica worker {pid}: peak RSS {peak_rss_mib(pid):6.1f} MiB", flush=True)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
