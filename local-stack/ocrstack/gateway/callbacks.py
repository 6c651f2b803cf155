"""Where the gateway may POST a function's answer (X-Callback-Url): public addresses, or hosts allowed by name.

A callback URL comes from whoever called the function, so without rules it turns the gateway into a
way to reach anything it can reach (the machine's own services, the cloud's metadata address). The
address is resolved once, checked, and the connection is made to exactly that address (no DNS
rebinding between the check and the request); redirects are not followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult


class CallbackRefused(ValueError):
    """The URL breaks a rule; the message names it."""


@dataclass(frozen=True)
class CallbackRules:
    """Private, loopback and link-local addresses are refused unless `allowed` names the host or its network."""

    allowed: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: str) -> "CallbackRules":
        return cls(tuple(part.strip() for part in raw.split(",") if part.strip()))

    def _allowed(self, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        for entry in self.allowed:
            if entry == host:
                return True
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
        return address.is_global

    def check_syntax(self, url: str) -> tuple[str, int]:
        """Scheme and host present: http or https only. Returns (host, port)."""
        try:
            parts = urlsplit(url)
            port = parts.port  # raises on a port out of range or not a number
        except ValueError as e:
            # urlsplit's own words: "Invalid IPv6 URL", "Port out of range 0-65535", ...
            raise CallbackRefused(f"X-Callback-Url is not a valid URL: {e}") from e
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CallbackRefused("X-Callback-Url must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise CallbackRefused("X-Callback-Url must not carry credentials")
        return parts.hostname, port or (443 if parts.scheme == "https" else 80)

    async def resolve(self, url: str) -> list[ResolveResult]:
        """The checked addresses of the URL's host, in aiohttp's resolver format; refuses any that is not allowed."""
        host, port = self.check_syntax(url)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as e:  # UnicodeError: a label IDNA cannot encode
            raise CallbackRefused(f"the callback host {host!r} does not resolve: {e}") from e
        resolved = []
        for family, _type, proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            if not self._allowed(host, address):
                raise CallbackRefused(
                    f"the callback host {host!r} is {address}, a private, loopback or link-local address; "
                    "allow it with --callback-allowed-hosts")
            resolved.append(ResolveResult(hostname=host, host=str(address), port=port, family=family, proto=proto,
                                          flags=socket.AI_NUMERICHOST))
        return resolved


class PinnedResolver(AbstractResolver):
    """Answers with addresses checked beforehand, so the connection goes where the check looked."""

    def __init__(self, addresses: list[ResolveResult]) -> None:
        self.addresses = addresses

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        return [a for a in self.addresses if a["hostname"] == host]

    async def close(self) -> None:
        return None
