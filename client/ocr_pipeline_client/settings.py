"""Where the `ocr` command finds the service and its key: flags, then OCR_URL / OCR_API_KEY, then a config file."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class SettingsMissing(Exception):
    """The command cannot start: no URL or no key anywhere (a usage error, exit 2)."""


@dataclass(frozen=True)
class ClientSettings:
    url: str
    api_key: str | None


def config_path(env: Mapping[str, str]) -> Path:
    """OCR_CONFIG, else `$XDG_CONFIG_HOME/ocr/config.toml`, else `~/.config/ocr/config.toml`."""
    if env.get("OCR_CONFIG"):
        return Path(env["OCR_CONFIG"])
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "ocr" / "config.toml"


def load(url: str | None = None, env: Mapping[str, str] | None = None) -> ClientSettings:
    """The settings of one run; a file named by OCR_CONFIG must exist, the default one may not."""
    env = os.environ if env is None else env
    path = config_path(env)
    file: dict[str, object] = {}
    if path.is_file():
        try:
            file = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise SettingsMissing(f"cannot read the config file {path}: {e}") from e
    elif env.get("OCR_CONFIG"):
        raise SettingsMissing(f"OCR_CONFIG names {path}, which is not a file")
    url = url or env.get("OCR_URL") or _string(file, "url", path)
    key = env.get("OCR_API_KEY") or _string(file, "api_key", path)
    if not url:
        raise SettingsMissing(f"no service URL: set OCR_URL, pass --url, or put url = \"...\" in {path}")
    if not url.startswith(("http://", "https://")):
        raise SettingsMissing(f"the service URL must start with http:// or https://, not {url!r}")
    return ClientSettings(url=url.rstrip("/"), api_key=key or None)


def _string(file: Mapping[str, object], name: str, path: Path) -> str | None:
    value = file.get(name)
    if value is not None and not isinstance(value, str):
        raise SettingsMissing(f"{name} in {path} must be a string")
    return value
