"""Session fixtures: the real local stack (MariaDB, Redis, MinIO, gateway and functions) for integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """MariaDB, Redis, MinIO and the gateway with the five functions, on free 127.0.0.1 ports."""
    from ocrstack.stack import LocalStack, StackPorts

    local = LocalStack(tmp_path_factory.mktemp("stack"), StackPorts.free(), REPO_ROOT)
    try:
        local.start()
        yield local
    finally:
        local.stop()
