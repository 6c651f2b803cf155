"""Where the gateway may POST a function's answer (X-Callback-Url): public addresses, or hosts allowed by name.

The rules are common/addresses.py's, shared with the completion webhook; this module resolves on the event loop.

A callback URL comes from whoever called the function, so without rules it turns the gateway into a
way to reach anything it can reach (the machine's own services, the cloud's metadata address). The
address is resolved once, checked, and the connection is made to exactly that address (no DNS
rebinding between the check and the request); redirects are not followed.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult

from common.addresses import AddressRefused, TrustedNetworks, parse_address, parse_url, vet


# The shared rules' refusal, under the name the gateway's callers catch.
CallbackRefused = AddressRefused


@dataclass(frozen=True)
class CallbackRules:
    """Private, loopback and link-local addresses are refused unless `trusted` names the host or its network
    (common/addresses.py, the same rules as the completion webhook's)."""

    trusted: TrustedNetworks = TrustedNetworks()

    @classmethod
    def parse(cls, raw: str) -> "CallbackRules":
        return cls(TrustedNetworks.parse(raw))

    def check_syntax(self, url: str) -> tuple[str, int]:
        """Scheme and host present: http or https only. Returns (host, port)."""
        parts = parse_url(url, "X-Callback-Url")
        return parts.host, parts.port

    async def resolve(self, url: str) -> list[ResolveResult]:
        """The checked addresses of the URL's host, in aiohttp's resolver format; refuses any that is not allowed."""
        host, port = self.check_syntax(url)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as e:  # UnicodeError: a label IDNA cannot encode
            raise CallbackRefused(f"the callback host {host!r} does not resolve: {e}") from e
        found = [(family, proto, parse_address(str(sockaddr[0]))) for family, _type, proto, _name, sockaddr in infos]
        vet(host, [address for _family, _proto, address in found], self.trusted,
            "allow it with --callback-allowed-hosts")
        return [ResolveResult(hostname=host, host=str(address), port=port, family=family, proto=proto,
                              flags=socket.AI_NUMERICHOST) for family, proto, address in found]


class PinnedResolver(AbstractResolver):
    """Answers with addresses checked beforehand, so the connection goes where the check looked."""

    def __init__(self, addresses: list[ResolveResult]) -> None:
        self.addresses = addresses

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        return [a for a in self.addresses if a["hostname"] == host]

    async def close(self) -> None:
        return None
