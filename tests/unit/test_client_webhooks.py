"""Webhook signatures and the rules of where a callback may go: the receiver's check (ocr_pipeline_client.webhooks)
agrees with the service's signing (common.rules.webhooks), and private addresses are refused unless allowed."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from common.config import load_settings
from common.errors import CallbackRefused
from common.rules import webhooks
from ocr_pipeline_client.webhooks import InvalidSignature, verify, webhook_secret

SETTINGS = load_settings({"MYSQL_PASSWORD": "x", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b"})
KEY = "ocr_0123456789ab_" + "s" * 43


def test_the_receiver_derives_the_secret_the_service_signs_with() -> None:
    """The client computes from its key what the service computes from the key's stored SHA-256."""
    stored = hashlib.sha256(("s" * 43).encode()).hexdigest()
    assert webhook_secret(KEY) == webhooks.webhook_secret(stored)
    body = b'{"type": "job.completed"}'
    header = webhooks.signature(webhooks.webhook_secret(stored), 1_800_000_000, body)
    assert verify(KEY, header, body, now=1_800_000_100) == {"type": "job.completed"}


@pytest.mark.parametrize(("header", "body", "now", "says"), [
    (None, b"{}", 1_800_000_000, "no valid"),
    ("t=1800000000,v1=00", b"{}", 1_800_000_000, "does not match"),
    ("SIGNED", b"{}", 1_800_000_000, "no valid"),
    ("VALID", b'{"tampered": 1}', 1_800_000_000, "does not match"),
    ("VALID", b"{}", 1_800_000_301, "more than 300 s"),
    ("t=1800000000,v1=\u00e9\u00e9", b"{}", 1_800_000_000, "does not match"),
])
def test_a_bad_or_stale_signature_is_refused(header: str | None, body: bytes, now: float, says: str) -> None:
    if header == "VALID":
        header = webhooks.signature(webhook_secret(KEY), 1_800_000_000, b"{}")
    with pytest.raises(InvalidSignature, match=says):
        verify(KEY, header, body, now=now)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://[::1]/x", "http://10.0.0.8/x",
                                 "http://192.168.1.1/x", "http://169.254.169.254/", "http://localhost/x"])
def test_private_loopback_and_link_local_addresses_are_refused_by_default(url: str) -> None:
    with pytest.raises(CallbackRefused, match="private, loopback or link-local"):
        webhooks.check(SETTINGS, url)


def test_allowed_hosts_open_a_name_or_a_network_and_the_address_is_pinned() -> None:
    allowed = dataclasses.replace(SETTINGS, callback_allowed_hosts=("localhost", "10.0.0.0/8"))
    target = webhooks.check(allowed, "http://10.0.0.8:8080/hook?x=1")
    assert (target.address, target.port, target.path, target.host_header) == ("10.0.0.8", 8080, "/hook?x=1",
                                                                                "10.0.0.8:8080")
    assert webhooks.check(allowed, "http://localhost/x").address in ("127.0.0.1", "::1")
    with pytest.raises(CallbackRefused):
        webhooks.check(allowed, "http://192.168.1.1/x")


@pytest.mark.parametrize(("url", "says"), [
    ("file:///etc/passwd", "http:// or https://"), ("gopher://a/", "http:// or https://"), ("http:///x", "with a host"),
    ("https://u:p@example.com/", "credentials"), ("http://example.com:99999/", "invalid port"),
    ("http://example.com/" + "a" * 2048, "longer than"),
])
def test_only_plain_http_and_https_urls_are_taken(url: str, says: str) -> None:
    with pytest.raises(CallbackRefused, match=says):
        webhooks.check(SETTINGS, url)
