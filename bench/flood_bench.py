"""An upload during a flood of bucket drops: how long it waits, with the queue's uploads lane and without.

Run from the repository root: ./local-stack/bootstrap && .venv/bin/python -m bench.flood_bench [--drops 80]

Starts its own stack on free ports. For each setting (the gateway's default `--queue-lanes uploads`, then
`--queue-lanes ""`, one lane for everything, as before lanes existed): the time from upload to `completed`
of a one-page image when the queue is idle, then the same upload made right after `--drops` images were
stored and their notifications posted to the gateway's queue at once (each an OCR job of its own), and how
long the flood took to drain. Figures are printed as they are measured.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common.adapters.db import Job, session_scope
from common.adapters.storage import minio_client
from common.config import load_settings
from ocrstack.stack import LocalStack, StackPorts
from tests.support import Gateway, image_bytes

REPO = Path(__file__).resolve().parent.parent


def upload_to_completed(gateway: Gateway, label: str) -> float:
    started = time.monotonic()
    reply = gateway.upload(image_bytes([f"URGENT upload {label}"]), "urgent.png")
    assert reply.status == 202, reply.body
    final = gateway.wait_final(reply.json()["job_id"], timeout=600)
    assert final["status"] == "completed", final
    return time.monotonic() - started


def unfinished(settings: Any) -> int:
    with session_scope(settings) as session:
        return session.query(Job).filter(Job.status.in_(["pending", "processing"])).count()


def flood(stack: LocalStack, settings: Any, drops: int) -> None:
    """`drops` notifications posted to the gateway's queue at once, as MinIO sends them after an outage or a
    bulk copy: each names a stored one-line image and becomes a job of the default lane."""
    s3 = minio_client(settings)
    data = image_bytes(["A dropped page in a flood"])
    # Stored outside the notified prefixes, so the only events are the ones posted here, all at once.
    keys = [f"flood/{uuid.uuid4().hex}-{i}.png" for i in range(drops)]
    for key in keys:
        s3.put_object(settings.s3_bucket, key, io.BytesIO(data), len(data), content_type="image/png")
    sender = Gateway(stack.gateway_url)
    headers = {"Authorization": f"Bearer {settings.internal_token}", "Content-Type": "application/json"}

    def post(key: str) -> None:
        record = {"eventName": "s3:ObjectCreated:Put",
                  "s3": {"bucket": {"name": settings.s3_bucket},
                         "object": {"key": key, "size": len(data), "eTag": uuid.uuid4().hex}}}
        reply = sender.request("POST", "/async-function/ocr-process", headers=headers,
                               body=json.dumps({"EventName": "s3:ObjectCreated:Put", "Records": [record]}).encode())
        assert reply.status == 202, reply.body

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, keys))


def measure(stack: LocalStack, settings: Any, gateway: Gateway, lanes: str, drops: int) -> None:
    name = f"--queue-lanes {lanes or chr(34) * 2}"
    stack.stop_gateway()
    stack.gateway.extra_args = ("--queue-lanes", lanes)
    stack.start_gateway()
    upload_to_completed(gateway, "warm-up")
    idle = min(upload_to_completed(gateway, f"idle {i}") for i in range(3))
    print(f"{name:26} upload->completed, idle queue:          {idle:6.2f} s", flush=True)
    started = time.monotonic()
    flood(stack, settings, drops)
    busy = upload_to_completed(gateway, "in a flood")
    print(f"{name:26} upload->completed, after {drops} drops:    {busy:6.2f} s", flush=True)
    while unfinished(settings):
        time.sleep(0.5)
    print(f"{name:26} the flood drained in:                   {time.monotonic() - started:6.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drops", type=int, default=80)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flood-bench-") as tmp:
        stack = LocalStack(Path(tmp) / "stack", StackPorts.free(), REPO)
        print(f"starting a local stack in {tmp} ...", flush=True)
        stack.start()
        try:
            settings = load_settings(stack.function_env())
            gateway = Gateway(stack.gateway_url, api_key=stack.admin_key)
            for lanes in ("uploads", ""):
                measure(stack, settings, gateway, lanes, args.drops)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
