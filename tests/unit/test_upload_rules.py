"""An HTTP upload's rules, decided in common/rules (intake) before anything is stored: who may ask for a callback."""

from __future__ import annotations

import io

import pytest

from common.config import load_settings
from common.errors import CallbackRefused
from common.models import Principal, Role
from common.rules.intake import Upload, take_upload

SETTINGS = load_settings({"MYSQL_PASSWORD": "x", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b"})
KEYED = Principal(key_id="k1", role=Role.USER)
ANONYMOUS = Principal(key_id=None, role=Role.USER)


def _take(caller: Principal, callback_url: str) -> None:
    take_upload(SETTINGS, Upload(io.BytesIO(b"x"), 1, "a.png", "image/png", "eng"), "r1", caller,
                callback_url=callback_url)


def test_a_callback_without_an_api_key_is_refused_before_anything_is_stored() -> None:
    """No key, no webhook secret to sign with: refused with the reason (no service is reached)."""
    with pytest.raises(CallbackRefused, match="needs an API key"):
        _take(ANONYMOUS, "https://example.com/hook")


def test_a_callback_to_a_private_address_is_refused_at_upload() -> None:
    """The webhook's address rules apply at upload, naming the rule, before any row or object exists."""
    with pytest.raises(CallbackRefused, match="private, loopback or link-local"):
        _take(KEYED, "http://127.0.0.1:9/hook")
