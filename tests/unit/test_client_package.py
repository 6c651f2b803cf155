"""The client is a distribution of its own (client/): urllib3 its one dependency, rich an extra, nothing of the
server in it, and nothing of it in the server. tests/integration/test_client_package.py installs its wheel alone."""

from __future__ import annotations

import ast
import io
import re
import sys
import tomllib
from pathlib import Path

import pytest

from ocr_pipeline_client import progress

REPO = Path(__file__).resolve().parents[2]
CLIENT = REPO / "client"
PACKAGE = CLIENT / "ocr_pipeline_client"
# What the server's own code lives in: none of it may import the client.
SERVER = [REPO / "common", REPO / "functions", REPO / "local-stack" / "ocrstack"]


def project(path: Path) -> dict[str, object]:
    loaded: dict[str, object] = tomllib.loads(path.read_text())["project"]
    return loaded


def names(requirements: object) -> set[str]:
    assert isinstance(requirements, list)
    return {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def imported_roots(path: Path) -> dict[str, int]:
    """Each top-level package the module imports, with the line; imports inside functions included."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0]: node.lineno for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found[node.module.split(".")[0]] = node.lineno
    return found


def test_the_client_depends_on_urllib3_alone_with_rich_as_the_progress_extra() -> None:
    """client/pyproject.toml: the distribution ocr-pipeline-client, urllib3 its one requirement, rich the extra."""
    client = project(CLIENT / "pyproject.toml")
    assert client["name"] == "ocr-pipeline-client"
    assert names(client["dependencies"]) == {"urllib3"}
    assert client["optional-dependencies"] == {"progress": ["rich>=13"]}


@pytest.mark.parametrize("module", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_the_client_imports_the_standard_library_urllib3_and_itself(module: Path) -> None:
    """No module of the client imports the server (`common`) or a package it does not declare; rich only in
    the progress display, where its absence is handled."""
    allowed = set(sys.stdlib_module_names) | {"ocr_pipeline_client", "urllib3"}
    if module.name == "progress.py":
        allowed.add("rich")
    assert {root: line for root, line in imported_roots(module).items() if root not in allowed} == {}


def test_the_server_neither_ships_nor_imports_the_client() -> None:
    """The server's distribution has no client package or `ocr` command, and no server module imports it."""
    server = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert not (REPO / "common" / "client").exists()
    assert all("client" not in pattern for pattern in server["tool"]["setuptools"]["packages"]["find"]["include"])
    assert "ocr" not in server["project"]["scripts"] and "rich" not in names(server["project"]["dependencies"])
    importers = [str(path.relative_to(REPO)) for folder in SERVER for path in folder.rglob("*.py")
                 if "ocr_pipeline_client" in imported_roots(path)]
    assert importers == []


def test_the_venv_the_tests_run_in_pins_what_the_client_needs() -> None:
    """urllib3 and the extra's rich are pinned in the requirement files the bootstrap installs with the client."""
    files = [REPO / "requirements-dev.txt", REPO / "requirements.txt", REPO / "template/python3-ocr/requirements.txt"]
    pinned = {m.group(1).lower() for f in files for m in re.finditer(r"^([A-Za-z0-9_.-]+)==\S+$", f.read_text(), re.M)}
    client = project(CLIENT / "pyproject.toml")
    extras = client["optional-dependencies"]
    assert isinstance(extras, dict)
    assert names(client["dependencies"]) | names(extras["progress"]) <= pinned


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_without_the_progress_extra_a_terminal_gets_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich missing (the client installed without [progress]) is no error: the plain display stands in."""
    assert isinstance(progress.display_for(Terminal()), progress.Bars)
    monkeypatch.setattr(progress, "has_bars", lambda: False)
    assert isinstance(progress.display_for(Terminal()), progress.PlainLines)
