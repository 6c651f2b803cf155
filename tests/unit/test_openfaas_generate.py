"""deploy/openfaas/functions.yml is exactly what faas-cli generates from stack.yml, so it cannot drift from it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from ocrstack.services import openfaas_tool

REPO = Path(__file__).resolve().parents[2]
GENERATED = REPO / "deploy" / "openfaas" / "functions.yml"


def test_the_function_resources_are_what_faas_cli_generates_from_stack_yml() -> None:
    """The real faas-cli (the bootstrap's) generates the same Function resources as the file holds."""
    made = subprocess.run([str(openfaas_tool("faas-cli")), "generate", "--api=openfaas.com/v1", "-f", "stack.yml"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=True).stdout
    kept = "".join(line for line in GENERATED.read_text().splitlines(keepends=True) if not line.startswith("#"))
    assert kept == made, "deploy/openfaas/functions.yml is stale: generate it again (its first lines say how)"


def test_every_function_of_stack_yml_is_a_function_resource() -> None:
    """One Function per stack.yml function, with its image."""
    stack = yaml.safe_load((REPO / "stack.yml").read_text())["functions"]
    resources = [d for d in yaml.safe_load_all(GENERATED.read_text()) if d]
    assert sorted(r["metadata"]["name"] for r in resources) == sorted(stack)
    assert all(r["kind"] == "Function" and r["spec"]["image"] == stack[r["metadata"]["name"]]["image"]
               for r in resources)
