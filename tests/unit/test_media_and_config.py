"""Type sniffing from bytes, safe file names and settings validation."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from common.config import load_settings
from common.engine.media import sniff_media_type
from common.errors import ConfigError
from common.rules.documents import safe_filename


@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("TIFF", "image/tiff"),
                                           ("WEBP", "image/webp"), ("BMP", "image/bmp"), ("GIF", "image/gif"),
                                           ("PDF", "application/pdf")])
def test_supported_types_are_recognised_from_bytes(fmt: str, mime: str) -> None:
    """Each supported format is recognised from its own bytes."""
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), "white").save(buf, format=fmt)
    assert sniff_media_type(buf.getvalue()) == mime


@pytest.mark.parametrize("head", [b"hello world", b"", b"PK\x03\x04zipfile", b"<html></html>"])
def test_other_bytes_are_not_documents(head: bytes) -> None:
    """Text, archives and markup are not documents, whatever they are named."""
    assert sniff_media_type(head) is None


@pytest.mark.parametrize(("name", "expected"), [("../../etc/passwd", "passwd"), ("C:\\scans\\a.pdf", "a.pdf"),
                                                 ("bad\x00name\n.png", "badname.png"), ("", "document"),
                                                 (None, "document")])
def test_safe_filename_keeps_only_a_base_name(name: str | None, expected: str) -> None:
    """Client file names lose directories and control characters."""
    assert safe_filename(name, "document") == expected


def test_settings_errors_name_every_bad_variable(tmp_path: object) -> None:
    """One start-up error lists each missing or malformed variable."""
    with pytest.raises(ConfigError) as info:
        load_settings({"SECRETS_DIR": "/nonexistent", "MYSQL_PORT": "abc", "OCR_WORKERS": "0"})
    message = info.value.message
    for name in ("MYSQL_PORT", "OCR_WORKERS", "MYSQL_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY"):
        assert name in message


def test_secret_files_win_over_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A secret mounted under the secrets dir is used instead of the env var, as OpenFaaS mounts them."""
    (tmp_path / "mysql-password").write_text("from-file\n")
    env = {"SECRETS_DIR": str(tmp_path), "MYSQL_PASSWORD": "from-env", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b"}
    assert load_settings(env).mysql_password == "from-file"
