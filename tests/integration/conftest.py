"""Integration fixtures: an HTTP client for the gateway, the MinIO client, settings of the running stack."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from common.config import Settings, load_settings
from tests.support import Gateway


@pytest.fixture
def gateway(stack: Any) -> Gateway:
    """A client of the stack's gateway with an API key of its own, so each test has its own rate-limit buckets."""
    return Gateway(stack.gateway_url, api_key=f"test-{uuid.uuid4().hex}")


@pytest.fixture(scope="session")
def settings(stack: Any) -> Settings:
    return load_settings(stack.function_env())


@pytest.fixture(scope="session")
def s3(settings: Settings) -> Any:
    from common.storage import get_client

    return get_client(settings)
