"""The token-bucket adapter on a real Redis: spends atomically in its own terms, and speaks no library error."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path

import pytest

from common.adapters import token_bucket
from common.config import Settings
from common.errors import CacheUnavailable

pytestmark = pytest.mark.integration


def test_a_bucket_spends_its_tokens_then_says_how_long_to_wait(settings: Settings) -> None:
    """Three tokens, refilled at one a second: three takes pass, the fourth waits about a second."""
    name = f"test:{uuid.uuid4().hex}"
    spent = [token_bucket.take(settings, name, 3, 1.0) for _ in range(4)]
    assert [s.allowed for s in spent] == [True, True, True, False]
    assert 0 < spent[3].retry_after <= 1.0 and spent[3].tokens < 1
    assert asyncio.run(token_bucket.take_async(settings, name, 3, 1.0)).allowed is False, "one bucket, both calls"


def test_a_redis_that_cannot_answer_is_cache_unavailable(settings: Settings, tmp_path: Path) -> None:
    """The adapter turns the library's error into ours, so nothing above it catches a Redis exception."""
    from ocrstack.services import Redis, free_port

    server = Redis(tmp_path, free_port())
    server.start()
    server.stop()
    stopped = dataclasses.replace(settings, redis_url=server.url)
    with pytest.raises(CacheUnavailable):
        token_bucket.take(stopped, "test:down", 3, 1.0)
    with pytest.raises(CacheUnavailable):
        asyncio.run(token_bucket.take_async(stopped, "test:down", 3, 1.0))
