"""The gateway edge's pure rules: paths, call ids, callback URLs, connection counts, stored credentials, settings."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from common.config import load_settings, setting_problems
from common.errors import ServiceUnavailable, Unauthenticated
from ocrstack.gateway import access, edge_rules, policy
from ocrstack.gateway.callbacks import CallbackRefused, CallbackRules
from ocrstack.gateway.edge import ConnectionCounts, ConnectionRules, Tally, client_of, parse_error_code, raw_json_response
from ocrstack.gateway.provider import parse_duration
from ocrstack.gateway.queue import DEAD_ENTRY_MAX, AsyncQueue, Invocation


@pytest.mark.parametrize("raw_path", ["/function/status/%ff", "/function/x/%C3%28", "/async-function/a/%80?x=1"])
def test_a_path_that_is_not_utf8_once_decoded_is_refused(raw_path: str) -> None:
    """Invalid UTF-8 behind %-escapes is refused with a reason, never passed on to crash a function."""
    assert edge_rules.path_refusal(raw_path) is not None


@pytest.mark.parametrize("raw_path", ["/function/status/abc", "/function/x/%C3%A9t%C3%A9", "/f?q=%ff"])
def test_utf8_paths_pass(raw_path: str) -> None:
    """Paths that decode to UTF-8 pass (the query is the function's to judge)."""
    assert edge_rules.path_refusal(raw_path) is None


@pytest.mark.parametrize(("raw_path", "tail"), [
    ("/function/echo", "/"), ("/function/echo/", "/"), ("/function/echo/a/b?x=1&y=%20", "/a/b?x=1&y=%20"),
    ("/async-function/echo.openfaas-fn/%2F?", "/%2F"),
])
def test_the_sub_path_is_passed_on_as_the_client_encoded_it(raw_path: str, tail: str) -> None:
    """The sub-path and query keep the client's encoding (%2F stays %2F)."""
    assert edge_rules.raw_tail(raw_path) == tail


@pytest.mark.parametrize(("call_id", "refused"), [(None, False), ("abc-1", False), ("x" * 65, True),
                                                   ("a b", True), ("é", True)])
def test_call_ids_are_visible_ascii_of_bounded_length(call_id: str | None, refused: bool) -> None:
    """An X-Call-Id is stored and logged with the call: as the functions' request ids, or refused."""
    assert (edge_rules.call_id_refusal(call_id) is not None) is refused


def test_every_http_error_status_has_a_stable_code() -> None:
    """aiohttp's own errors get codes as the functions' errors do."""
    assert edge_rules.http_code(404) == "not_found" and edge_rules.http_code(405) == "method_not_allowed"
    assert edge_rules.http_code(418) == "bad_request" and edge_rules.http_code(599) == "internal_error"


@pytest.mark.parametrize("url", ["http://example.com:99999/", "http://example.com:port/", "http://[::1/",
                                 "http://[zz::1]/", "http://exa mple.com:-1/"])
def test_a_callback_url_with_a_bad_port_or_ipv6_address_is_refused_not_crashed(url: str) -> None:
    """urlsplit's ValueError (port out of range, malformed IPv6) becomes the 400's CallbackRefused."""
    with pytest.raises(CallbackRefused):
        asyncio.run(CallbackRules().resolve(url))


def test_connection_counts_cap_each_client_and_all_together() -> None:
    """A client address past its cap is refused, as are all clients past the total; exempt addresses never."""
    counts = ConnectionCounts(ConnectionRules(per_client=2, total=3, exempt=("127.0.0.1/32",)))
    assert [counts.admit("10.0.0.1") for _ in range(3)] == [None, None, "per_client"]
    assert counts.admit("10.0.0.2") is None and counts.admit("10.0.0.3") == "total"
    assert all(counts.admit("127.0.0.1") is None for _ in range(10))
    counts.release("10.0.0.1")
    assert counts.admit("10.0.0.3") is None and counts.total == 3


def test_an_ipv6_client_is_its_64_and_a_mapped_ipv4_its_address() -> None:
    """One IPv6 host has a /64 to pick addresses from: they count as one client."""
    assert client_of(("2001:db8::1", 1, 0, 0)) == client_of(("2001:db8::ffff:1", 2, 0, 0)) == "2001:db8::/64"
    assert client_of(("::ffff:10.1.2.3", 1, 0, 0)) == "10.1.2.3" and client_of(None) == ""


def test_repeated_events_are_counted_into_one_line_per_interval() -> None:
    """A thousand refusals in an interval are one log line with their counts."""
    tally = Tally(interval=3600)
    with capture_logs() as logs:
        for _ in range(1000):
            tally.add("edge.connections_refused", "per_client")
        tally.add("edge.connections_refused", "total")
        tally.flush(force=True)
    assert len(logs) == 1 and logs[0]["event"] == "edge.connections_refused"
    assert logs[0]["counts"] == {"per_client": 1000, "total": 1} and logs[0]["total"] == 1001


def test_raw_refusal_is_a_complete_json_answer_that_closes() -> None:
    """What a refused connection gets: HTTP/1.1 503, JSON with a code, Connection: close, the right length."""
    raw = raw_json_response(503, "Service Unavailable", "too_many_connections", "close some")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ") and b"Connection: close" in head
    assert f"Content-Length: {len(body)}".encode() in head and b'"too_many_connections"' in body
    assert parse_error_code(None) == "bad_request"


def test_stored_headers_keep_no_credential_and_the_replay_sends_the_key_id_only() -> None:
    """The queue keeps neither Authorization, X-Api-Key nor cookies; a replay names the key id beside the
    internal token, never the key's secret."""
    headers = {"Authorization": "Bearer ocr_0123456789ab_secret", "X-Api-Key": "k", "Cookie": "c=1",
               "X-Verified-Key-Id": "forged", "Content-Type": "application/pdf"}
    assert access.stored_headers(headers) == {"Content-Type": "application/pdf"}

    class Settings:
        internal_token = "internal-secret"

    sent = access.call_headers(access.Caller(access.API_KEY, "0123456789ab"), Settings())  # type: ignore[arg-type]
    assert sent == {"Authorization": "Bearer internal-secret", "X-Verified-Key-Id": "0123456789ab"}
    assert access.call_headers(access.Caller(), Settings()) == {}  # type: ignore[arg-type]


def test_a_stack_files_access_annotation_is_one_of_three() -> None:
    """api-key, internal or open (the default); anything else is a stack file error."""
    assert access.access_of({}) == access.OPEN and access.access_of({access.ANNOTATION: "internal"}) == "internal"
    with pytest.raises(ValueError):
        access.access_of({access.ANNOTATION: "apikey"})


@pytest.mark.parametrize(("env", "named"), [({"MAX_UPLOAD_BYTES": "abc"}, "MAX_UPLOAD_BYTES"),
                                            ({"OCR_DPI": "10"}, "OCR_DPI"), ({"exec_timeout": "soon"}, "exec_timeout"),
                                            ({"OUTPUT_PDFA": "maybe"}, "OUTPUT_PDFA")])
def test_a_deployment_setting_the_function_would_refuse_is_refused_by_name(env: dict[str, str], named: str) -> None:
    """The settings reader the function uses judges the deployment's values; the refusal names the setting."""
    with pytest.raises(policy.DeploymentRefused) as refused:
        policy.check_settings(env, env, parse_duration)
    assert refused.value.code == "setting_invalid" and named in refused.value.message


def test_problems_of_settings_not_asked_for_do_not_refuse_a_deployment() -> None:
    """A secret the gateway cannot see (MYSQL_PASSWORD) is not the deployment's fault."""
    assert "MYSQL_PASSWORD" in setting_problems({})
    policy.check_settings({"MAX_UPLOAD_BYTES": "1000", "exec_timeout": "1m30s"}, {"MAX_UPLOAD_BYTES": "1000"},
                          parse_duration)


class RecordingPipe:
    """Records the commands a dead letter is written with (the queue's pipeline, without Redis)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...], dict[str, object]]] = []

    def __getattr__(self, name: str) -> object:
        return lambda *args, **kw: self.calls.append((name, args, kw))


def test_a_dead_letter_is_capped_in_count_age_and_size() -> None:
    """XADD with an exact MAXLEN, an age trim by MINID, and a large body not kept (the letter says how large)."""
    pipe = RecordingPipe()
    big = Invocation("upload", "/", "", "POST", {"Content-Type": "x"}, b"x" * (DEAD_ENTRY_MAX * 4), "c1", None)
    AsyncQueue._bury(pipe, big)
    (name, args, kw), (trim, _targs, tkw) = pipe.calls
    assert name == "xadd" and kw == {"maxlen": 500, "approximate": False} and trim == "xtrim" and "minid" in tkw
    stored = Invocation.loads(args[1]["payload"])  # type: ignore[index]
    assert stored.body == b"" and stored.body_dropped == DEAD_ENTRY_MAX * 4 and len(args[1]["payload"]) <= DEAD_ENTRY_MAX  # type: ignore[index]
    small = Invocation("ocr-process", "/", "", "POST", {}, b'{"job_id": "j"}', "c2", None)
    AsyncQueue._bury(pipe, small)
    assert Invocation.loads(pipe.calls[2][1][1]["payload"]).body == b'{"job_id": "j"}'  # type: ignore[index]


def test_the_door_check_needs_no_service_for_open_functions_tokens_or_auth_off() -> None:
    """Open functions and AUTH=off let anyone by; internal ones need the token; a queued call to a key-checking
    function needs an internal token to be made later (503 without one), a sync one does not."""
    base = {"MYSQL_PASSWORD": "x", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b"}
    with_token = load_settings({**base, "INTERNAL_TOKEN": "tok"})
    assert access.check_caller(access.OPEN, {}, with_token) == access.Caller()
    assert access.check_caller(access.API_KEY, {}, load_settings({**base, "AUTH": "off"})) == access.Caller()
    assert access.check_caller(access.INTERNAL, {"Authorization": "Bearer tok"}, with_token) == access.Caller("internal")
    with pytest.raises(Unauthenticated):
        access.check_caller(access.INTERNAL, {"Authorization": "Bearer nope"}, with_token)
    with pytest.raises(ServiceUnavailable):
        access.check_caller(access.API_KEY, {"X-Api-Key": "k"}, load_settings(base))
    with pytest.raises(Unauthenticated):  # no key: refused before any lookup, queued or not
        access.check_caller(access.API_KEY, {}, load_settings(base), queued=False)
