"""A crashed gateway: its functions die with it, and the supervisor starts it again; the stack keeps working."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.support import Gateway, image_bytes, wait_until

pytestmark = pytest.mark.integration


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is pid (read from /proc, as ps does)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_gateway_killed_hard_takes_its_functions_along_and_comes_back(stack: Any, gateway: Gateway) -> None:
    """kill -9 of the gateway: no function process outlives it, the supervisor restarts it, uploads work again."""
    supervisor = stack.gateway.pid()
    assert supervisor is not None
    [first] = children_of(supervisor)
    functions = children_of(first)
    assert len(functions) == 6, functions  # one process per function of stack.yml

    os.kill(first, signal.SIGKILL)
    wait_until(lambda: not any(alive(pid) for pid in functions), 15, what="the functions to die with the gateway")

    def restarted() -> bool:
        now = children_of(supervisor)
        return bool(now) and now[0] != first and stack.gateway.ready()

    wait_until(restarted, 60, what="the supervisor to start the gateway again")
    reply = gateway.upload(image_bytes(["BACK after a crash"]), "back.png")
    assert reply.status == 202, reply.body
    assert gateway.wait_final(reply.json()["job_id"])["status"] == "completed"
