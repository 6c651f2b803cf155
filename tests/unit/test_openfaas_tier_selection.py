"""The OpenFaaS tier is opt-in: the default run deselects its tests (never skips them), --openfaas selects only
them, and its script refuses to start without the user's clones, saying what to clone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "local-stack" / "openfaas-tier"
# The tier's tests, as their files define them (test functions; none is parametrized).
TIER_TESTS = sum(path.read_text().count("\ndef test_") for path in (REPO_ROOT / "tests" / "openfaas").glob("test_*.py"))


def _collect(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    return done.stdout


def test_default_run_deselects_the_openfaas_tier_without_skipping_it() -> None:
    """Collected without --openfaas, every test of tests/openfaas is deselected, and none is reported skipped."""
    out = _collect("tests/openfaas", "tests/unit/test_openfaas_tier_selection.py")
    assert "tests/openfaas/" not in out
    assert "test_openfaas_tier_selection.py::test_default_run_deselects" in out
    summary = out.strip().splitlines()[-1]
    assert f"{TIER_TESTS} deselected" in summary and "skipped" not in summary, summary


def test_openfaas_option_selects_only_the_tier() -> None:
    """With --openfaas the tier's tests are collected and every other test is deselected."""
    out = _collect("--openfaas", "tests/openfaas", "tests/unit/test_openfaas_tier_selection.py")
    listed = [line for line in out.splitlines() if "::" in line]
    assert listed and all(line.startswith("tests/openfaas/") for line in listed), out
    assert len(listed) == TIER_TESTS >= 8


def test_tier_script_names_the_clones_it_needs(tmp_path: Path) -> None:
    """Without OPENFAAS_SOURCES, or with a folder lacking a clone, the script stops before starting anything and
    says what to set or which repository and tag to clone."""
    env = {k: v for k, v in os.environ.items() if k != "OPENFAAS_SOURCES"}
    unset = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert unset.returncode == 1 and "OPENFAAS_SOURCES" in unset.stderr, unset.stderr
    empty = subprocess.run([str(SCRIPT)], env={**env, "OPENFAAS_SOURCES": str(tmp_path)}, capture_output=True,
                           text=True, timeout=30, check=False)
    assert empty.returncode == 1, empty.stderr
    assert f"{tmp_path}/faasd is not a git clone (want faasd at 0.19.0)" in empty.stderr
