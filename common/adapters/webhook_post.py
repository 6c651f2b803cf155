"""Webhook adapter: one POST to an address checked beforehand, without DNS, redirects or retries of its own."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import urllib3

# Short: a slow receiver holds an ocr-process worker; the delivery loop (rules/webhooks.py) retries later.
TIMEOUT = urllib3.Timeout(connect=3.0, read=5.0)
# What is read of a receiver's answer: only its status matters, the rest is drained up to this and dropped.
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Target:
    """Where a checked callback URL goes: the connection is made to `address` (resolved once and checked), while
    `host` names the site in the Host header and TLS (SNI and the certificate's name)."""

    scheme: str
    host: str
    port: int
    path: str
    address: str

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


class DeliveryFailed(Exception):
    """No HTTP answer at all (refused, reset, timed out); the message says which."""


def post(target: Target, body: bytes, headers: dict[str, str]) -> int:
    """POST `body` to the pinned address; returns the receiver's HTTP status (a 3xx is returned, not followed)."""
    address = str(ipaddress.ip_address(target.address))
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(address, target.port, timeout=TIMEOUT, retries=False, maxsize=1,
                                           server_hostname=target.host, assert_hostname=target.host,
                                           cert_reqs="CERT_REQUIRED")
    else:
        pool = urllib3.HTTPConnectionPool(address, target.port, timeout=TIMEOUT, retries=False, maxsize=1)
    try:
        with pool:
            reply = pool.urlopen("POST", target.path, body=body, headers={**headers, "Host": target.host_header},
                                 redirect=False, preload_content=False, assert_same_host=False)
            reply.read(MAX_ANSWER_BYTES)
            reply.release_conn()
            return int(reply.status)
    except urllib3.exceptions.HTTPError as e:
        raise DeliveryFailed(type(e).__name__ if not str(e) else str(e).split(": ", 1)[-1][:200]) from e
