"""The status function on its event loop (common/web/loop.py), in the stack as stack.yml deploys it
(FUNCTION_USE_ASGI): on the sync server, two processes, the hit below would wait for the lock too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from common.adapters.db import get_engine
from common.config import Settings
from tests.support import Gateway, image_bytes, wait_until

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_a_cache_hit_is_answered_while_reads_wait_on_mysql(gateway: Gateway, settings: Settings) -> None:
    """Reads that need MySQL wait in worker threads, not on the loop: with the jobs table locked, more of them
    than the function has processes are held, and a cache hit is still answered meanwhile."""
    job_id = gateway.upload(image_bytes(["LOOP hit"]), "hit.png").json()["job_id"]
    gateway.wait_final(job_id)
    assert gateway.status(job_id).headers.get("X-Cache") == "hit"  # the status and the caller's key are cached

    with get_engine(settings).connect() as locker, ThreadPoolExecutor(max_workers=6) as pool:
        locker.execute(text("LOCK TABLES jobs WRITE, documents WRITE"))
        try:
            # Unknown jobs: cache misses whose MySQL read waits for the lock. Four, against two processes.
            held = [pool.submit(gateway.status, str(uuid.uuid4())) for _ in range(4)]
            waiting = pool.submit(_until_all_wait_on_the_lock, settings, 4)
            assert waiting.result(timeout=30), "the four reads never reached MySQL"
            hit = pool.submit(gateway.status, job_id).result(timeout=20)
            assert (hit.status, hit.headers.get("X-Cache")) == (200, "hit")
            assert not any(f.done() for f in held), "the reads needing MySQL were answered before the lock went"
        finally:
            locker.execute(text("UNLOCK TABLES"))
        for reply in (f.result(timeout=30) for f in held):
            assert (reply.status, reply.json()["error"]["code"]) == (404, "job_not_found")


def _until_all_wait_on_the_lock(settings: Settings, count: int) -> bool:
    """Poll MariaDB's process list until `count` sessions wait for the table lock (at most 20 s)."""
    deadline = time.monotonic() + 20
    with get_engine(settings).connect() as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.execute(text(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for table%'"
            )).scalar_one()
            if waiting >= count:
                return True
            time.sleep(0.05)
    return False


def test_a_body_sent_to_status_is_refused_unread(gateway: Gateway) -> None:
    """The loop never reads a request body: a POST of 20 MB is a 405 naming GET, and the next read is served."""
    refused = gateway.request("POST", f"/function/status/{uuid.uuid4()}", body=b"x" * (20 << 20),
                              headers={"Content-Type": "application/octet-stream"})
    assert (refused.status, refused.json()["error"]["code"]) == (405, "method_not_allowed")
    assert "GET" in refused.json()["error"]["message"]
    assert gateway.status(str(uuid.uuid4())).status == 404


def test_the_workers_end_with_their_master(stack: Any, tmp_path: Path) -> None:
    """A status server whose master is killed outright (as a local gateway's functions die with it) leaves no
    worker behind: uvicorn's workers, unlike gunicorn's own, would otherwise run on, holding the port."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, **stack.function_env(), FUNCTION_USE_ASGI="true", WORKERS="2")
    master = subprocess.Popen(
        [sys.executable, "-m", "functions_framework", "--target", "handle", "--source",
         str(REPO / "functions/status/handler.py"), "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=REPO, stdout=(tmp_path / "server.log").open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        workers = wait_until(lambda: _children(master.pid) if len(_children(master.pid)) == 2 else None, 30,
                             what="the two workers")
        os.kill(master.pid, signal.SIGKILL)
        master.wait(timeout=10)
        wait_until(lambda: not any(_alive(pid) for pid in workers) or None, 20, what="the workers to end")
    finally:
        try:
            os.killpg(master.pid, signal.SIGKILL)  # the group: the master and anything left of its workers
        except ProcessLookupError:
            pass


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
