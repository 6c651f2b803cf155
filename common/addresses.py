"""Which addresses a URL given by a caller may make us connect to: public ones, or hosts and networks trusted by name.

A URL from a caller (a completion webhook's `callback_url`, the gateway's `X-Callback-Url`) would otherwise
reach whatever this machine can reach: its own services, the cloud's metadata address. Both callers resolve
the host themselves (one synchronously, one on the event loop), vet every address here, and connect to the
vetted address, never resolving again. An IPv6 address that carries an IPv4 one (mapped, compatible, NAT64
well-known or local-use, 6to4, Teredo) is judged by the IPv4 address inside, since that is where the packets go.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 6052's well-known NAT64 prefix: the last 32 bits are the IPv4 address a translator connects to.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# RFC 8215's local-use NAT64 prefix: an operator's translator may read the IPv4 address as a /96 (the last 32
# bits) or, RFC 6052's /48 layout, from bits 48-63 and 72-87. Both readings are checked, so an address there is
# public only if it is under both: in practice only a trusted network opens it.
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
# RFC 4291's deprecated IPv4-compatible form ::a.b.c.d (:: and ::1 excluded: they are no IPv4 address).
_COMPATIBLE = ipaddress.IPv6Network("::/96")


class AddressRefused(ValueError):
    """The URL or one of its host's addresses breaks a rule; the message names it."""


@dataclass(frozen=True)
class Url:
    """The parts of a URL that say where a connection goes."""

    scheme: str
    host: str
    port: int
    path: str  # with its query, "/" when empty


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (Teredo carries two: its server and the client); [] for none."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    low = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _NAT64 or (address in _COMPATIBLE and int(address) > 1):
        return [low]
    if address in _NAT64_LOCAL:
        value = int(address)
        return [low, ipaddress.IPv4Address(((value >> 64) & 0xFFFF) << 16 | ((value >> 40) & 0xFFFF))]
    return []


def parse_address(raw: str) -> IPAddress:
    """An address as getaddrinfo gives it, without an IPv6 zone (`fe80::1%eth0`)."""
    return ipaddress.ip_address(raw.split("%")[0])


@dataclass(frozen=True)
class TrustedNetworks:
    """Hosts (by name, in any case) and networks a URL may reach although they are not public."""

    entries: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: str | Iterable[str]) -> "TrustedNetworks":
        """From a comma-separated list (a command-line option) or the items of one (a setting)."""
        items = raw.split(",") if isinstance(raw, str) else raw
        return cls(tuple(item.strip() for item in items if item.strip()))

    def trusts(self, host: str, address: IPAddress) -> bool:
        """True when the host is named, or the address (or the IPv4 address it carries) is in a named network."""
        candidates = [address, *embedded_ipv4(address)]
        for entry in self.entries:
            if entry.rstrip(".").casefold() == host.rstrip(".").casefold():
                return True
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue  # a host name, compared above
            if any(candidate in network for candidate in candidates):
                return True
        return False

    def allows(self, host: str, address: IPAddress) -> bool:
        """Trusted, or public: the address and every IPv4 address it carries are global."""
        if self.trusts(host, address):
            return True
        return address.is_global and all(inner.is_global for inner in embedded_ipv4(address))


def parse_url(url: str, name: str, max_chars: int | None = None) -> Url:
    """Scheme http or https, a host, no credentials, a valid port; AddressRefused naming `name` (the URL's field)."""
    if max_chars is not None and len(url) > max_chars:
        raise AddressRefused(f"{name} is longer than {max_chars} characters")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as e:
        # urlsplit's own words: "Invalid IPv6 URL", ...
        raise AddressRefused(f"{name} is not a valid URL: {e}") from e
    if parts.scheme not in ("http", "https") or not hostname:
        raise AddressRefused(f"{name} must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise AddressRefused(f"{name} must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise AddressRefused(f"{name} has an invalid port: {e}") from e
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Url(scheme=parts.scheme, host=hostname, port=port, path=path)


def vet(host: str, addresses: Iterable[IPAddress], trusted: TrustedNetworks, hint: str) -> None:
    """Every address the host resolved to must be allowed; AddressRefused names the first that is not and `hint`
    says how to trust it."""
    for address in addresses:
        if not trusted.allows(host, address):
            raise AddressRefused(f"the callback host {host!r} is {address}, a private, loopback or link-local "
                                 f"address; {hint}")
