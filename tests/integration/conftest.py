"""Integration fixtures: HTTP clients of the gateway with their own API keys, the MinIO client, the stack's settings."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from common.config import Settings, load_settings
from common.rules import apikeys
from tests.support import Gateway


def new_key(settings: Settings, role: apikeys.Role = apikeys.Role.USER) -> str:
    return apikeys.create(settings, f"test-{uuid.uuid4().hex[:8]}", role).token


@pytest.fixture
def gateway(stack: Any, settings: Settings) -> Gateway:
    """A client of the stack's gateway with a user key of its own: its own documents and rate-limit buckets."""
    return Gateway(stack.gateway_url, api_key=new_key(settings))


@pytest.fixture
def admin(stack: Any, settings: Settings) -> Gateway:
    """A client with an admin key of its own: sees every owner's documents."""
    return Gateway(stack.gateway_url, api_key=new_key(settings, apikeys.Role.ADMIN))


@pytest.fixture(scope="session")
def system(stack: Any) -> Gateway:
    """A client of the stack gateway's /system/* API, with its basic auth (user admin, the stack's password)."""
    return Gateway(stack.gateway_url, basic_auth=stack.gateway_auth)


@pytest.fixture(scope="session")
def settings(stack: Any) -> Settings:
    return load_settings(stack.function_env())


@pytest.fixture(scope="session")
def internal(settings: Settings) -> dict[str, str]:
    """The headers of an internal call of ocr-process (what MinIO's webhook and upload's hand-off send)."""
    return {"Authorization": f"Bearer {settings.internal_token}", "Content-Type": "application/json"}


@pytest.fixture(scope="session")
def s3(settings: Settings) -> Any:
    from common.adapters.storage import minio_client

    return minio_client(settings)
