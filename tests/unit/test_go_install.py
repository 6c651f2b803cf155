"""local-stack/go-install builds a Go program once per pinned version, keyed by version, offline from a file proxy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "local-stack" / "go-install"
MODULE = "example.com/hello"
VERSIONS = ["v1.0.0", "v1.1.0"]


def write_proxy(root: Path) -> None:
    """A module proxy in files (GOPROXY=file://...) serving MODULE at each of VERSIONS: a main package that
    prints its version, so a test can tell which build bin/ points at."""
    at = root / MODULE / "@v"
    at.mkdir(parents=True)
    go_mod = f"module {MODULE}\n\ngo 1.21\n"
    for version in VERSIONS:
        (at / f"{version}.info").write_text(json.dumps({"Version": version, "Time": "2026-01-01T00:00:00Z"}))
        (at / f"{version}.mod").write_text(go_mod)
        with zipfile.ZipFile(at / f"{version}.zip", "w") as z:
            z.writestr(f"{MODULE}@{version}/go.mod", go_mod)
            z.writestr(f"{MODULE}@{version}/main.go",
                       f'package main\n\nimport "fmt"\n\nfunc main() {{ fmt.Println("hello {version}") }}\n')
    (at / "list").write_text("\n".join(VERSIONS) + "\n")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The script's environment: a cache and a Go module cache of the test's own, modules from the file proxy."""
    assert shutil.which("go"), "Go is missing: local-stack/bootstrap installs it"
    write_proxy(tmp_path / "proxy")
    return {**os.environ, "OCR_PIPELINE_CACHE": str(tmp_path / "cache"), "GOPROXY": f"file://{tmp_path / 'proxy'}",
            "GOSUMDB": "off", "GOMODCACHE": str(tmp_path / "modcache"), "GOFLAGS": "-modcacherw",
            "GOTOOLCHAIN": "local"}


def install(env: dict[str, str], pinned: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, "hello", MODULE, pinned], env={**env, **extra}, capture_output=True, text=True,
                          timeout=180, check=False)


def run_tool(env: dict[str, str]) -> str:
    return subprocess.run([Path(env["OCR_PIPELINE_CACHE"]) / "bin" / "hello"], capture_output=True, text=True,
                          check=True, timeout=30).stdout.strip()


def test_a_pin_change_builds_the_new_version_and_going_back_reuses_the_old(env: dict[str, str]) -> None:
    """Each version is built once into a folder of its own; bin/ points at the pinned one."""
    first = install(env, "v1.0.0")
    assert first.returncode == 0, first.stderr
    assert "go install example.com/hello@v1.0.0" in first.stdout and run_tool(env) == "hello v1.0.0"
    again = install(env, "v1.0.0")
    assert "hello v1.0.0: present" in again.stdout and "go install" not in again.stdout
    changed = install(env, "v1.1.0")
    assert "go install example.com/hello@v1.1.0" in changed.stdout and run_tool(env) == "hello v1.1.0"
    back = install(env, "v1.0.0")
    assert "hello v1.0.0: present" in back.stdout and "go install" not in back.stdout
    assert run_tool(env) == "hello v1.0.0"
    built = Path(env["OCR_PIPELINE_CACHE"]) / "go-tools" / "hello"
    assert sorted(p.name for p in built.iterdir()) == VERSIONS


def test_a_binary_an_older_bootstrap_left_in_bin_is_kept_when_it_is_the_pinned_version(env: dict[str, str],
                                                                                     tmp_path: Path) -> None:
    """A plain binary in bin/ (what `go install` made before the folders per version) whose recorded version is
    the pin is kept as it is, not rebuilt; one of another version is replaced by a build of the pin."""
    bin_dir = Path(env["OCR_PIPELINE_CACHE"]) / "bin"
    bin_dir.mkdir(parents=True)
    subprocess.run(["go", "install", f"{MODULE}@v1.1.0"], env={**env, "GOBIN": str(bin_dir)}, check=True,
                   capture_output=True, timeout=180)
    inode = (bin_dir / "hello").stat().st_ino
    kept = install(env, "v1.1.0")
    assert "hello v1.1.0: kept the one already in" in kept.stdout and "go install" not in kept.stdout
    assert (bin_dir / "hello").is_symlink() and (bin_dir / "hello").stat().st_ino == inode
    (bin_dir / "hello").unlink()
    shutil.copy(Path(env["OCR_PIPELINE_CACHE"]) / "go-tools" / "hello" / "v1.1.0" / "hello", bin_dir / "hello")
    replaced = install(env, "v1.0.0")
    assert "the one in" in replaced.stdout and "is v1.1.0, not v1.0.0: building" in replaced.stdout
    assert run_tool(env) == "hello v1.0.0"


def test_latest_is_an_explicit_opt_in(env: dict[str, str]) -> None:
    """OCR_PIPELINE_GO_TOOLS=latest builds the newest version over the pin; any other value is refused."""
    newest = install(env, "v1.0.0", OCR_PIPELINE_GO_TOOLS="latest")
    assert newest.returncode == 0, newest.stderr
    assert "newest version is v1.1.0" in newest.stdout and run_tool(env) == "hello v1.1.0"
    refused = install(env, "v1.0.0", OCR_PIPELINE_GO_TOOLS="newest")
    assert refused.returncode == 2 and "must be 'pinned' (the default) or 'latest'" in refused.stderr


def test_a_version_that_does_not_build_fails_and_leaves_nothing_behind(env: dict[str, str]) -> None:
    """A pin the proxy does not have exits 1 with go's error, and leaves no folder or link that looks built."""
    failed = install(env, "v9.9.9")
    assert failed.returncode == 1 and "go install example.com/hello@v9.9.9 failed" in failed.stderr
    cache = Path(env["OCR_PIPELINE_CACHE"])
    assert not (cache / "go-tools" / "hello").exists() and not (cache / "bin" / "hello").exists()
