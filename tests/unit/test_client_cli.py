"""The `ocr` command's surface: installed as a console script, --help on every command, usage errors exit 2."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from common.client.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ["upload", "status", "wait", "text", "get", "ls", "search", "rm"]


def test_ocr_is_a_console_script_of_the_project() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["ocr"] == "common.client.cli:main"


@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS]])
def test_every_command_has_help(command: list[str]) -> None:
    """`ocr [COMMAND] --help` exits 0 and says where the URL and key come from."""
    run = subprocess.run([sys.executable, "-m", "common.client", *command, "--help"], capture_output=True, text=True,
                         cwd=REPO, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "OCR_API_KEY" in run.stdout and "usage: ocr" in run.stdout


@pytest.mark.parametrize("argv", [
    [], ["upload"], ["get", "job"], ["get", "job", "--pdf", "--hocr"], ["ls", "--status", "done"],
    ["upload", "x.pdf", "--outputs", "docx"], ["upload", "x.pdf", "--parallel", "0"], ["frobnicate"],
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as leaving:
        main(argv)
    assert leaving.value.code == 2
    assert "usage: ocr" in capsys.readouterr().err


def test_no_service_url_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Without OCR_URL, --url or a config file, the command says what to set, in one line, and exits 2."""
    for name in ("OCR_URL", "OCR_API_KEY", "OCR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert main(["ls"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("ocr: error: no service URL: set OCR_URL")


def test_outputs_are_named_by_what_they_hold() -> None:
    args = build_parser().parse_args(["upload", "a.pdf", "--out", "o", "--outputs", "pdf,text"])
    assert args.outputs == ("searchable_pdf", "text")
