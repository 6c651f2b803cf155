"""Reading credentials off a request: headers only, never the URL; AUTH=off is announced; ocr-process's token."""

from __future__ import annotations

import io
from dataclasses import replace

import flask
import pytest
import structlog

from common.config import Settings, get_settings, load_settings
from common.errors import ConfigError, CredentialsInUrl, InvalidApiKey, Unauthenticated
from common.models import TRUSTED, Principal, Role
from common.rules.apikeys import looks_like_token, verify
from common.web import api, auth

SETTINGS = load_settings({"MYSQL_PASSWORD": "x", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b",
                          "INTERNAL_TOKEN": "internal-secret"})
TOKEN = "ocr_0123456789ab_" + "A" * 43
app = flask.Flask(__name__)


def _request(path: str = "/", headers: dict[str, str] | None = None) -> flask.Request:
    return app.test_request_context(path, headers=headers or {}).request


def test_a_key_is_taken_from_bearer_or_x_api_key() -> None:
    """Authorization: Bearer wins; X-Api-Key serves when there is no Authorization header."""
    assert auth.presented_key(_request(headers={"Authorization": f"Bearer {TOKEN}"})) == TOKEN
    assert auth.presented_key(_request(headers={"X-Api-Key": TOKEN})) == TOKEN
    assert auth.presented_key(_request(headers={"Authorization": "Bearer "})) is None  # faas-cli without login
    assert auth.presented_key(_request()) is None
    with pytest.raises(Unauthenticated):
        auth.presented_key(_request(headers={"Authorization": "Basic dXNlcjpwYXNz"}))


@pytest.mark.parametrize("query", [f"?api_key={TOKEN}", "?token=x", "?Access_Token=x", f"?filename={TOKEN}"])
def test_credentials_in_the_url_are_refused_before_anything_else(query: str) -> None:
    """Under a credential's name or shaped like a key, in any parameter: 400 credentials_in_url, key not echoed."""
    with pytest.raises(CredentialsInUrl) as refused:
        auth.authenticate(_request("/" + query, {"Authorization": f"Bearer {TOKEN}"}), SETTINGS)
    assert TOKEN not in refused.value.message


def test_a_malformed_key_is_refused_without_a_lookup() -> None:
    """Only the ocr_<id>_<secret> shape is looked up, so junk never reaches MySQL or Redis."""
    assert looks_like_token(TOKEN) and not looks_like_token(TOKEN + "x") and not looks_like_token("ocr_x_y")
    with pytest.raises(InvalidApiKey) as refused:
        verify(SETTINGS, "ocr_not-a-key")
    assert refused.value.http_status == 401 and "invalid_token" in refused.value.headers["WWW-Authenticate"]


def test_missing_key_is_401_with_a_bearer_challenge() -> None:
    with pytest.raises(Unauthenticated) as refused:
        auth.authenticate(_request(), SETTINGS)
    assert refused.value.headers["WWW-Authenticate"] == 'Bearer realm="ocr-pipeline"'


def test_user_keys_are_limited_to_their_documents_and_admins_are_not() -> None:
    assert Principal("0123456789ab", Role.USER).owner_filter == "0123456789ab"
    assert Principal("0123456789ab", Role.ADMIN).owner_filter is None
    assert TRUSTED.owner_filter is None


@pytest.mark.parametrize(
    ("authorization", "allowed"),
    [("Bearer internal-secret", True), ("bearer internal-secret", True), ("Bearer internal-secre", False),
     ("internal-secret", False), ("", False), (f"Bearer {TOKEN}", False)],
)
def test_ocr_process_takes_only_the_internal_token(authorization: str, allowed: bool) -> None:
    """What MinIO sends (`Bearer <token>`) passes; an API key, a near miss or nothing is 401."""
    request = _request(headers={"Authorization": authorization} if authorization else {})
    if allowed:
        assert auth.authenticate_internal(request, SETTINGS) == TRUSTED
    else:
        with pytest.raises(Unauthenticated):
            auth.authenticate_internal(request, SETTINGS)


def test_ocr_process_without_a_configured_token_is_a_config_error_not_open() -> None:
    with pytest.raises(ConfigError):
        auth.authenticate_internal(_request(headers={"Authorization": "Bearer "}), replace(SETTINGS, internal_token=""))


def _first_requests(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], calls: int) -> tuple[list[Principal], str]:
    """A fresh function process's first `calls` requests under `env`: who each was, and what it logged."""
    for name, value in {"MYSQL_PASSWORD": "x", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b", **env}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("S3_PUBLIC_ENDPOINT", raising=False)
    get_settings.cache_clear()
    monkeypatch.setattr(api, "_warned", False)
    monkeypatch.setattr("common.logging._configured_for", None)  # log set-up again, onto the captured stderr
    seen: list[Principal] = []

    @api.http_function("status")
    def handler(request: flask.Request, settings: Settings, caller: Principal) -> flask.Response:
        seen.append(caller)
        return api.json_response({})

    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    try:
        with app.test_request_context("/"):
            for _ in range(calls):
                handler(flask.request)
    finally:
        get_settings.cache_clear()
        structlog.reset_defaults()
    return seen, out.getvalue()


def test_auth_off_trusts_everyone_and_says_so_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """With AUTH=off a call needs no key, and the first one logs a warning that names the risk."""
    seen, logged = _first_requests(monkeypatch, {"AUTH": "off"}, calls=2)
    assert seen == [TRUSTED, TRUSTED]
    assert logged.count('"auth.disabled"') == 1


def test_a_public_endpoint_only_the_functions_can_resolve_is_warned_about(monkeypatch: pytest.MonkeyPatch) -> None:
    """Links signed for `minio:9000` (compose's internal name) cannot be opened by users: said at start."""
    _, logged = _first_requests(monkeypatch, {"AUTH": "off", "S3_ENDPOINT": "minio:9000", "OUTPUT_LINKS": "presigned"},
                                calls=1)
    assert '"storage.public_endpoint_internal"' in logged
