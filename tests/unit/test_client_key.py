"""Who a request is charged to: the authenticated key, else the address, trusting X-Forwarded-For only from proxies."""

from __future__ import annotations

import flask
import pytest

from common.config import load_settings
from common.models import Principal, Role
from common.web import auth
from common.web.ratelimit import client_key

SETTINGS = load_settings({"MYSQL_PASSWORD": "x", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b",
                          "TRUSTED_PROXIES": "127.0.0.1,10.0.0.0/8"})
app = flask.Flask(__name__)


def _key(remote: str, headers: dict[str, str], principal: Principal | None = None) -> str:
    with app.test_request_context("/", headers=headers, environ_base={"REMOTE_ADDR": remote}):
        return client_key(flask.request, SETTINGS, principal)


def test_authenticated_key_id_is_the_bucket_not_a_header() -> None:
    """A verified key is charged by its id; a client-chosen X-Api-Key value never picks a bucket."""
    assert _key("203.0.113.9", {}, Principal("0123456789ab", Role.USER)) == "key:0123456789ab"
    assert _key("203.0.113.9", {"X-Api-Key": "anything-at-all"}) == "ip:203.0.113.9"


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("127.0.0.1", "198.51.100.7", "ip:198.51.100.7"),  # via the gateway
        ("127.0.0.1", "6.6.6.6, 198.51.100.7", "ip:198.51.100.7"),  # client-written entry on the left is ignored
        ("127.0.0.1", "198.51.100.7, 10.1.2.3", "ip:198.51.100.7"),  # chain of trusted proxies
        ("203.0.113.9", "1.2.3.4", "ip:203.0.113.9"),  # an untrusted peer cannot choose its address
        ("127.0.0.1", "", "ip:127.0.0.1"),
    ],
)
def test_forwarded_for_is_trusted_only_from_configured_proxies(remote: str, forwarded: str, expected: str) -> None:
    """X-Forwarded-For names the client only when the peer is a trusted proxy, read from the right."""
    assert _key(remote, {"X-Forwarded-For": forwarded} if forwarded else {}) == expected


GUARDED = load_settings({"MYSQL_PASSWORD": "x", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b",
                         "TRUSTED_PROXIES": "127.0.0.1", "INTERNAL_TOKEN": "t" * 32})


def test_with_an_internal_token_forwarded_for_counts_only_with_the_gateways_proof() -> None:
    """A local user reaching a function's port from 127.0.0.1 cannot pick a bucket with X-Forwarded-For: only the
    gateway's proof (an HMAC of the header under the internal token) makes it count."""
    def key(headers: dict[str, str]) -> str:
        with app.test_request_context("/", headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}):
            return client_key(flask.request, GUARDED)
    forwarded = "198.51.100.7"
    proof = auth.forwarded_proof("t" * 32, forwarded)
    assert key({"X-Forwarded-For": forwarded}) == "ip:127.0.0.1"
    assert key({"X-Forwarded-For": forwarded, auth.FORWARDED_PROOF_HEADER: "0" * 64}) == "ip:127.0.0.1"
    assert key({"X-Forwarded-For": "6.6.6.6", auth.FORWARDED_PROOF_HEADER: proof}) == "ip:127.0.0.1"
    assert key({"X-Forwarded-For": forwarded, auth.FORWARDED_PROOF_HEADER: proof}) == "ip:198.51.100.7"
