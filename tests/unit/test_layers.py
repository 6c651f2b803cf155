"""The layers of `common` as folders, with no import upward: base < adapters, engine < rules < web < cli."""

from __future__ import annotations

import ast
import json
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
