"""Download names and headers, and the status answer's result links under each OUTPUT_LINKS setting."""

from __future__ import annotations

import dataclasses

import pytest

from common.config import load_settings
from common.errors import ConfigError
from common.rules.downloads import attachment, output_links, saved_name

SETTINGS = load_settings({"SECRETS_DIR": "/nonexistent", "MYSQL_PASSWORD": "x", "S3_ACCESS_KEY": "a",
                          "S3_SECRET_KEY": "b", "S3_PUBLIC_ENDPOINT": "files.example.com"})


@pytest.mark.parametrize(("original", "kind", "saved"), [
    ("scan.pdf", "text", "scan.txt"),
    ("scan.pdf", "pdf", "scan.ocr.pdf"),
    ("scan.pdf", "hocr", "scan.hocr"),
    ("scan.pdf", "original", "scan.pdf"),
    ("photo.page.jpeg", "pdf", "photo.page.ocr.pdf"),
    ("README", "text", "README.txt"),
    (".hidden", "text", ".hidden.txt"),
    ("dir/inner.tif", "pdf", "inner.ocr.pdf"),
    ("", "text", "document.txt"),
])
def test_a_download_is_named_after_the_original(original: str, kind: str, saved: str) -> None:
    """The original's stem with the kind's suffix; the original keeps its name; never a folder or nothing."""
    assert saved_name(original, kind) == saved


def test_an_ascii_name_is_one_quoted_filename() -> None:
    """RFC 6266: `attachment; filename="..."` and nothing more for a plain name."""
    assert attachment("scan.ocr.pdf") == 'attachment; filename="scan.ocr.pdf"'


def test_a_non_ascii_name_adds_filename_star_with_an_ascii_fallback() -> None:
    """RFC 5987's filename* carries the real name, percent-encoded UTF-8; filename an ASCII rendering of it."""
    assert attachment("Überweisung 3€.txt") == \
        "attachment; filename=\"Uberweisung 3.txt\"; filename*=UTF-8''%C3%9Cberweisung%203%E2%82%AC.txt"


def test_quotes_and_control_characters_never_break_the_header() -> None:
    """A name with quotes, a backslash or a newline cannot end the quoted string or add a header line."""
    value = attachment('a"b\\c\r\nd.txt')
    assert "\r" not in value and "\n" not in value
    assert value.startswith('attachment; filename="abcd.txt"; filename*=UTF-8\'\'')


def test_api_links_point_at_the_documents_download_under_the_base() -> None:
    """OUTPUT_LINKS=api (the default): each stored output becomes its download URL; `pdfa` stays a record."""
    stored = {"searchable_pdf": "results/j/searchable.pdf", "hocr": "results/j/ocr.hocr",
              "pdfa": {"conformant": True}}
    links = output_links(SETTINGS, "j1", stored, "https://ocr.example.com")
    assert links == {"searchable_pdf": "https://ocr.example.com/function/documents/j1/download/pdf",
                     "hocr": "https://ocr.example.com/function/documents/j1/download/hocr",
                     "pdfa": {"conformant": True}}


def test_presigned_links_are_signed_for_the_public_minio_address() -> None:
    """OUTPUT_LINKS=presigned keeps the signed MinIO links, for deployments that publish MinIO."""
    presigned = dataclasses.replace(SETTINGS, output_links="presigned")
    links = output_links(presigned, "j1", {"searchable_pdf": "results/j1/searchable.pdf"}, "https://ignored")
    assert links["searchable_pdf"].startswith("http://files.example.com/documents/results/j1/searchable.pdf?")
    assert "X-Amz-Signature=" in links["searchable_pdf"]


def test_an_unknown_output_links_setting_is_a_configuration_error() -> None:
    """OUTPUT_LINKS takes api or presigned; anything else stops the start with the variable named."""
    with pytest.raises(ConfigError, match="OUTPUT_LINKS='minio' is not one of api, presigned"):
        load_settings({"SECRETS_DIR": "/nonexistent", "MYSQL_PASSWORD": "x", "S3_ACCESS_KEY": "a",
                       "S3_SECRET_KEY": "b", "OUTPUT_LINKS": "minio"})


@pytest.mark.parametrize(("public_url", "headers", "base"), [
    ("https://ocr.example.com", {"X-Forwarded-Host": "elsewhere"}, "https://ocr.example.com"),
    ("", {"X-Forwarded-Host": "gw.example.com:8080", "X-Forwarded-Proto": "https"}, "https://gw.example.com:8080"),
    ("", {"X-Forwarded-Host": "a.example.com, b.example.com", "X-Forwarded-Proto": "javascript"},
     "http://a.example.com"),
    ("", {}, "http://127.0.0.1:31000"),
])
def test_links_start_at_public_url_else_the_forwarded_host_else_the_functions_own(
        public_url: str, headers: dict[str, str], base: str) -> None:
    """PUBLIC_URL wins; else the gateway's X-Forwarded-Host/Proto (first hop; only http or https); else the
    host the function was called at."""
    import flask

    from common.web.links import public_base

    settings = dataclasses.replace(SETTINGS, public_url=public_url)
    with flask.Flask(__name__).test_request_context("/x", base_url="http://127.0.0.1:31000", headers=headers):
        assert public_base(flask.request, settings) == base
