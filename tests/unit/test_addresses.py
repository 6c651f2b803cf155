"""Address safety shared by the completion webhook and the gateway's X-Callback-Url: one set of rules, both callers."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress

import pytest

from common.addresses import AddressRefused, TrustedNetworks, embedded_ipv4, parse_url
from common.config import load_settings
from common.errors import CallbackRefused
from common.rules import webhooks
from ocrstack.gateway.callbacks import CallbackRules

SETTINGS = load_settings({"MYSQL_PASSWORD": "x", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b"})
# Each IPv6 form that carries an IPv4 address, around a private one (10.0.0.1) and a public one (8.8.8.8).
EMBEDDING = {
    "mapped": ("::ffff:10.0.0.1", "::ffff:8.8.8.8"),
    "compatible": ("::10.0.0.1", "::8.8.8.8"),
    "nat64": ("64:ff9b::10.0.0.1", "64:ff9b::8.8.8.8"),
    # RFC 8215's local-use prefix read as a /96 (the last 32 bits) and as RFC 6052's /48 layout (bits 48-63, 72-87).
    "nat64-local-96": ("64:ff9b:1::10.0.0.1", "64:ff9b:1::8.8.8.8"),
    "nat64-local-48": ("64:ff9b:1:a00:0:100::", "64:ff9b:1:808:8:800::"),
    "6to4": ("2002:a00:1::1", "2002:808:808::1"),
    # Teredo: server 65.54.227.120, client obfuscated (bits inverted): f5ff:fffe is 10.0.0.1, f7f7:f7f7 is 8.8.8.8.
    "teredo": ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "2001:0:4136:e378:8000:63bf:f7f7:f7f7"),
}


@pytest.mark.parametrize("form", sorted(EMBEDDING))
def test_each_ipv6_form_that_carries_an_ipv4_address_yields_it(form: str) -> None:
    """Mapped, compatible, NAT64, 6to4 and Teredo addresses are read down to the IPv4 address inside."""
    private, public = EMBEDDING[form]
    assert ipaddress.IPv4Address("10.0.0.1") in embedded_ipv4(ipaddress.ip_address(private))
    assert ipaddress.IPv4Address("8.8.8.8") in embedded_ipv4(ipaddress.ip_address(public))


@pytest.mark.parametrize("form", sorted(EMBEDDING))
def test_an_ipv6_form_carrying_a_private_ipv4_address_is_refused(form: str) -> None:
    """Judged by the IPv4 address the packets go to, not by the IPv6 prefix that Python calls global."""
    private, public = EMBEDDING[form]
    assert not TrustedNetworks().allows("h", ipaddress.ip_address(private))
    # ::ffff:0:0/96 and Teredo's 2001::/32 are never global themselves, whatever they carry; a local-use NAT64
    # address is read two ways, and one of them is always 0.0.0.0 for an address the other finds public.
    if form not in ("mapped", "teredo", "nat64-local-96", "nat64-local-48"):
        assert TrustedNetworks().allows("h", ipaddress.ip_address(public))


def test_a_trusted_network_also_trusts_the_ipv4_address_inside_an_ipv6_one() -> None:
    """Trusting 10.0.0.0/8 trusts ::ffff:10.0.0.1 too: the same host, written another way."""
    trusted = TrustedNetworks.parse("10.0.0.0/8")
    assert trusted.allows("h", ipaddress.ip_address("::ffff:10.0.0.1"))
    assert not trusted.allows("h", ipaddress.ip_address("::ffff:192.168.0.1"))


@pytest.mark.parametrize("written", ["Hooks.Example", "hooks.example.", "HOOKS.EXAMPLE"])
def test_trusted_host_names_match_in_any_case(written: str) -> None:
    """Host names are case-insensitive (and a final dot changes nothing): both callers agree now."""
    assert TrustedNetworks.parse(written).allows("hooks.example", ipaddress.ip_address("10.0.0.1"))


@pytest.mark.parametrize(("url", "says"), [
    ("ftp://a/", "http:// or https://"), ("http:///x", "with a host"), ("http://u:p@a/", "credentials"),
    ("http://a:99999/", "invalid port"), ("http://[::1/", "not a valid URL"),
])
def test_url_rules_name_the_field_and_the_rule(url: str, says: str) -> None:
    """One refusal message per rule, naming the caller's field."""
    with pytest.raises(AddressRefused, match=says) as refused:
        parse_url(url, "the_field")
    assert "the_field" in str(refused.value)


@pytest.mark.parametrize("url", ["http://[::ffff:127.0.0.1]/x", "http://[64:ff9b::7f00:1]/x",
                                 "http://[64:ff9b:1::7f00:1]/x",
                                 "http://[2002:7f00:1::]/x",
                                 "http://[::127.0.0.1]/x", "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/x"])
def test_both_callers_refuse_loopback_written_as_ipv6(url: str) -> None:
    """The completion webhook and the gateway's X-Callback-Url apply the same rules to the same URL."""
    settings = dataclasses.replace(SETTINGS, callback_allowed_hosts=())
    with pytest.raises(CallbackRefused, match="private, loopback or link-local"):
        webhooks.check(settings, url)
    with pytest.raises(AddressRefused, match="private, loopback or link-local"):
        asyncio.run(CallbackRules().resolve(url))


def test_both_callers_trust_a_host_named_in_another_case() -> None:
    """A trusted name written in capitals is the same host to both callers."""
    settings = dataclasses.replace(SETTINGS, callback_allowed_hosts=("LocalHost",))
    assert webhooks.check(settings, "http://localhost:9/x").address in ("127.0.0.1", "::1")
    assert asyncio.run(CallbackRules.parse("LocalHost").resolve("http://localhost:9/x"))
