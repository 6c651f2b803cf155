"""Webhook signatures and the rules of where a callback may go: the receiver's check (ocr_pipeline_client.webhooks)
agrees with the service's signing (common.rules.webhooks), and private addresses are refused unless allowed."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from common.config import load_settings
from common.errors import CallbackRefused
from common.adapters.db import ApiKey
from common.rules import webhook_keys, webhooks
from ocr_pipeline_client.webhooks import InvalidSignature, verify, webhook_secret

SETTINGS = load_settings({"MYSQL_PASSWORD": "x", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b"})
KEY = "ocr_0123456789ab_" + "s" * 43


TOKEN = "t" * 32


def test_the_receiver_derives_the_secret_the_service_unseals() -> None:
    """The client computes from its key what the service unseals with its internal token; the seal alone, or
    with the key's stored hash, is not the secret."""
    sealed = webhook_keys.seal(TOKEN, "0123456789ab", webhook_keys.secret_of("s" * 43))
    key = ApiKey(id="0123456789ab", secret_hash=hashlib.sha256(("s" * 43).encode()).hexdigest(), webhook_seal=sealed)
    secret = webhooks.signing_secret(dataclasses.replace(SETTINGS, internal_token=TOKEN), key)
    assert secret is not None and secret.scheme == "v2" and secret.secret == webhook_secret(KEY)
    assert bytes.fromhex(sealed) != secret.secret and webhook_keys.legacy_secret(key.secret_hash) != secret.secret
    assert webhooks.signing_secret(dataclasses.replace(SETTINGS, internal_token=""), key) is None
    body = b'{"type": "job.completed"}'
    header = webhooks.signature(secret.secret, 1_800_000_000, body, secret.scheme)
    assert header.startswith("t=1800000000,v2=")
    assert verify(KEY, header, body, now=1_800_000_100) == {"type": "job.completed"}


def test_a_key_older_than_the_seal_signs_v1_which_the_receiver_takes_only_when_asked() -> None:
    """A key without a seal is signed from its stored hash (v1); verify refuses that unless legacy=True."""
    key = ApiKey(id="0123456789ab", secret_hash=hashlib.sha256(("s" * 43).encode()).hexdigest(), webhook_seal=None)
    secret = webhooks.signing_secret(SETTINGS, key)
    assert secret is not None and secret.scheme == "v1"
    header = webhooks.signature(secret.secret, 1_800_000_000, b"{}", secret.scheme)
    with pytest.raises(InvalidSignature, match="legacy=True"):
        verify(KEY, header, b"{}", now=1_800_000_000)
    assert verify(KEY, header, b"{}", now=1_800_000_000, legacy=True) == {}


@pytest.mark.parametrize(("header", "body", "now", "says"), [
    (None, b"{}", 1_800_000_000, "no valid"),
    ("t=1800000000,v2=00", b"{}", 1_800_000_000, "does not match"),
    ("SIGNED", b"{}", 1_800_000_000, "no valid"),
    ("VALID", b'{"tampered": 1}', 1_800_000_000, "does not match"),
    ("VALID", b"{}", 1_800_000_301, "more than 300 s"),
    ("t=1800000000,v2=\u00e9\u00e9", b"{}", 1_800_000_000, "does not match"),
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


@pytest.mark.parametrize("url", ["http://[::ffff:127.0.0.1]/x", "http://[::ffff:10.0.0.8]/x",
                                 "http://[64:ff9b::127.0.0.1]/x", "http://[64:ff9b::a9fe:a9fe]/x",
                                 "http://[2002:7f00:1::1]/x", "http://[2002:c0a8:101::]/x", "http://[::127.0.0.1]/x"])
def test_ipv6_forms_of_private_ipv4_addresses_are_refused(url: str) -> None:
    """Mapped, NAT64, 6to4 and IPv4-compatible IPv6 forms of a loopback or private IPv4 address are refused too."""
    with pytest.raises(CallbackRefused, match="private, loopback or link-local"):
        webhooks.check(SETTINGS, url)


def test_an_ipv6_form_of_a_public_ipv4_address_passes_and_an_allowed_network_covers_its_mapped_form() -> None:
    """64:ff9b::8.8.8.8 reaches a public address; ::ffff:10.0.0.8 is allowed when 10.0.0.0/8 is."""
    assert webhooks.check(SETTINGS, "http://[64:ff9b::808:808]/x").address == "64:ff9b::808:808"
    allowed = dataclasses.replace(SETTINGS, callback_allowed_hosts=("10.0.0.0/8",))
    assert webhooks.check(allowed, "http://[::ffff:10.0.0.8]/x").address == "::ffff:a00:8"


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
