"""Type sniffing from bytes, safe file names and settings validation."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from common.config import load_settings
from common.engine.media import sniff_media_type
from common.engine.language.installed import validate_lang
from common.errors import ConfigError, InvalidFilename, InvalidLanguage
from common.rules.intake import safe_filename


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
                                                 (None, "document"), ("..", "document"), (".", "document"),
                                                 ("a/..", "document"), (" .. ", "document"),
                                                 ("lone\ud800surrogate.png", "lonesurrogate.png")])
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


def test_a_read_replica_is_off_by_default_and_shares_the_primarys_user_port_and_database() -> None:
    """Without MYSQL_REPLICA_HOST every read is the primary's; with it the replica's URL keeps the primary's
    credentials and database, and its port defaults to MYSQL_PORT."""
    env = {"SECRETS_DIR": "/nonexistent", "MYSQL_PASSWORD": "pw", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b",
           "MYSQL_PORT": "3307", "MYSQL_USER": "reader", "MYSQL_DATABASE": "archive"}
    assert load_settings(env).replica_url is None
    replica = load_settings({**env, "MYSQL_REPLICA_HOST": "replica.internal"})
    assert replica.replica_url == "mysql+pymysql://reader:pw@replica.internal:3307/archive?charset=utf8mb4"
    assert (replica.mysql_replica_timeout, replica.mysql_replica_retry_seconds) == (1.0, 30.0)
    other = load_settings({**env, "MYSQL_REPLICA_HOST": "r", "MYSQL_REPLICA_PORT": "3310",
                           "MYSQL_REPLICA_TIMEOUT": "0.5"})
    assert other.replica_url is not None and ":3310/" in other.replica_url and other.mysql_replica_timeout == 0.5


@pytest.mark.parametrize(("name", "value"), [("MYSQL_REPLICA_TIMEOUT", "0"), ("MYSQL_REPLICA_TIMEOUT", "soon"),
                                             ("MYSQL_REPLICA_PORT", "0")])
def test_a_bad_replica_setting_is_refused_naming_it(name: str, value: str) -> None:
    """A replica timeout that is not a positive number, or a bad port, stops start-up with the variable named."""
    env = {"SECRETS_DIR": "/nonexistent", "MYSQL_PASSWORD": "pw", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b",
           "MYSQL_REPLICA_HOST": "replica.internal", name: value}
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert name in info.value.message


def test_secret_files_win_over_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A secret mounted under the secrets dir is used instead of the env var, as OpenFaaS mounts them."""
    (tmp_path / "mysql-password").write_text("from-file\n")
    env = {"SECRETS_DIR": str(tmp_path), "MYSQL_PASSWORD": "from-env", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b"}
    assert load_settings(env).mysql_password == "from-file"


def test_a_long_upload_name_is_refused_naming_the_limit() -> None:
    """An upload's name over 255 bytes of UTF-8 is invalid_filename (400) naming the limit, not cut."""
    assert safe_filename("a" * 251 + ".pdf", "document", refuse_long=True) == "a" * 251 + ".pdf"
    with pytest.raises(InvalidFilename, match="has 256 bytes in UTF-8; the limit is 255"):
        safe_filename("a" * 252 + ".pdf", "document", refuse_long=True)
    # 200 characters, 600 bytes: characters alone would pass the column but not MinIO's key segment.
    with pytest.raises(InvalidFilename, match="has 600 bytes"):
        safe_filename("語" * 200, "document", refuse_long=True)


def test_a_long_dropped_name_is_cut_at_a_character_boundary() -> None:
    """A dropped object's key cannot be changed: its name is cut to 255 bytes, never mid-character."""
    cut = safe_filename("inbox/" + "語" * 200, "document")
    assert cut == "語" * 85 and len(cut.encode()) == 255


def test_a_language_longer_than_its_column_is_refused_naming_the_limit() -> None:
    """79 characters of installed names is invalid_language (400) naming 64, before tesseract is asked."""
    lang = "+".join(["eng"] * 20)
    assert len(lang) == 79
    with pytest.raises(InvalidLanguage, match="has 79 characters; the limit is 64"):
        validate_lang(lang)
