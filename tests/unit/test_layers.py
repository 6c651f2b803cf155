"""The layers of `common` as folders, with no import upward: base < adapters, engine < rules < web < cli."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMON = REPO / "common"

# Rank of each layer; a module may import its own layer or a lower one. Adapters and engine share a
# rank but must not import each other: the engine never talks to a service, an adapter never OCRs.
# The client (the SDK and the `ocr` command) is no layer of the server: it is its own distribution, client/
# (tests/unit/test_client_package.py).
RANKS = {"base": 0, "adapters": 1, "engine": 1, "rules": 2, "web": 3, "cli": 4}
BASE = {"addresses", "blocking", "config", "errors", "logging", "models"}
ENGINE_MODULES = ("pikepdf", "PIL")


def layer_of(module: str) -> str:
    """`common.rules.jobs` -> rules; `common.config` -> base; `common.cli` and `common.__main__` -> cli."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] in RANKS:
        return parts[1]
    if parts[1] in BASE or parts[1] == "__init__":
        return "base"
    if parts[1] in ("cli", "__main__"):
        return "cli"
    raise AssertionError(f"{module} is in no layer: put it in a layer folder or the base")


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("common"):
            if node.module == "common":
                found |= {f"common.{alias.name}" for alias in node.names}
            elif node.module.split(".")[-1] in RANKS and len(node.module.split(".")) == 2:
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("common.")}
    return found


def modules() -> list[tuple[str, Path]]:
    return [(".".join(p.relative_to(REPO).with_suffix("").parts), p) for p in sorted(COMMON.rglob("*.py"))]


def test_every_module_sits_in_a_layer() -> None:
    """No module outside the layer folders but the base ones (addresses, blocking, config, errors, logging, models) and the CLI."""
    for name, _ in modules():
        layer_of(name)


@pytest.mark.parametrize(("name", "path"), modules(), ids=[name for name, _ in modules()])
def test_no_import_goes_up_a_layer(name: str, path: Path) -> None:
    """A module imports only its own layer or lower ones; adapters and engine never import each other."""
    mine = layer_of(name)
    for imported in imports_of(path):
        theirs = layer_of(imported)
        assert RANKS[theirs] <= RANKS[mine], f"{name} ({mine}) imports {imported} ({theirs})"
        assert {mine, theirs} != {"adapters", "engine"}, f"{name} ({mine}) imports {imported} ({theirs})"


_PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2:])))
"""


@pytest.mark.parametrize("function", ["status", "list", "upload", "documents", "ui"])
def test_functions_that_do_not_ocr_start_without_the_engine(function: str) -> None:
    """Only ocr-process loads pikepdf and Pillow; the others start lighter and faster."""
    loaded = subprocess.run([sys.executable, "-c", _PROBE, str(REPO / "functions" / function / "handler.py"),
                             *ENGINE_MODULES], capture_output=True, text=True, check=True, cwd=REPO)
    assert json.loads(loaded.stdout) == []


ARCHITECTURE = REPO / "docs" / "ARCHITECTURE.md"
# Where a path the page names may start: the checkout, or the folders the page abbreviates (`ocrstack/...`).
_ROOTS = (REPO, REPO / "local-stack", REPO / "common")


def _named_paths() -> list[str]:
    """Every `...py` path or `common/`, `local-stack/` or `ocrstack/` path written in backticks on the page."""
    found = re.findall(r"`([\w./-]+)`", ARCHITECTURE.read_text())
    return sorted({p for p in found if p.endswith(".py") or p.startswith(("common/", "local-stack/", "ocrstack/"))})


def _layer_rows() -> list[tuple[str, list[str]]]:
    """(folder, modules named) of each row of the layer table whose folder is one of common's."""
    rows = []
    for line in ARCHITECTURE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`common/\w+/`", cells[1]):
            rows.append((cells[1].strip("`"), re.findall(r"`([\w/]+)`", cells[2])))
    return rows


def _project_files() -> list[str]:
    """The checkout's files, relative to it, without hidden folders (the venv, git's own)."""
    found = []
    for folder, subfolders, files in os.walk(REPO):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d not in ("node_modules", "build")]
        found += [Path(folder, name).relative_to(REPO).as_posix() for name in files]
    return found


@pytest.mark.parametrize("path", _named_paths())
def test_every_module_path_named_in_the_architecture_page_exists(path: str) -> None:
    """docs/ARCHITECTURE.md names no module, file or folder the code no longer has (a short name such as
    `gateway/provider.py` or `edge.py` stands for the one file whose path ends so)."""
    if any((root / path).exists() for root in _ROOTS):
        return
    assert any(f.endswith("/" + path) for f in _project_files()), f"ARCHITECTURE.md names {path}: no such file"


def test_every_module_of_the_layer_table_exists() -> None:
    """The layer table's modules (`jobs`, `listing/`, an engine folder's `read`) are modules or packages there."""
    rows = _layer_rows()
    assert {folder for folder, _ in rows} == {"common/adapters/", "common/engine/", "common/rules/", "common/web/"}
    for folder, names in rows:
        sub = ""
        for name in names:
            if name.endswith("/") and (REPO / folder / name).is_dir():
                sub = name  # the names after a sub-folder are its modules, until the next one
                continue
            places = [REPO / folder / sub / name, REPO / folder / name]
            assert any(p.with_suffix(".py").is_file() or p.is_dir() for p in places), f"{folder}: no module {name}"


@pytest.mark.parametrize(("name", "path"), modules(), ids=[name for name, _ in modules()])
def test_only_adapters_speak_redis(name: str, path: Path) -> None:
    """Redis's wire protocol (the client, its errors, Lua scripts) lives in adapters; rules and web use their terms."""
    if layer_of(name) == "adapters":
        return
    for node in ast.walk(ast.parse(path.read_text())):
        imported = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
            [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
        assert not any(m == "redis" or m.startswith("redis.") for m in imported), f"{name} imports {imported}"


@pytest.mark.parametrize(("name", "path"), modules(), ids=[name for name, _ in modules()])
def test_only_the_db_adapter_speaks_mysql(name: str, path: Path) -> None:
    """MySQL's own SQL (its dialect's constructs, planner hints, raw SQL text) lives in adapters/db; the rules build
    portable statements from its terms (adapters/db/dialect)."""
    if name.startswith(("common.adapters.db", "common.adapters.migrations")):
        return
    source = path.read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            assert not (node.module or "").startswith("sqlalchemy.dialects"), f"{name} imports {node.module}"
            assert not (node.module == "sqlalchemy" and any(a.name == "text" for a in node.names)), f"{name}: raw SQL"
        if isinstance(node, ast.Attribute):
            assert node.attr not in ("prefix_with", "with_hint", "if_"), f"{name} uses .{node.attr}"
