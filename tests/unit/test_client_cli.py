"""The `ocr` command's surface: installed as a console script, --help on every command, usage errors exit 2."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ocr_pipeline_client.cli import build_parser, client_version, main
from ocr_pipeline_client.sdk import result_name

REPO = Path(__file__).resolve().parents[2]
CLIENT = REPO / "client" / "pyproject.toml"
COMMANDS = ["upload", "status", "wait", "text", "get", "ls", "search", "reprocess", "rm"]


def test_ocr_is_a_console_script_of_the_client_and_not_of_the_server() -> None:
    """`ocr` comes with the client's distribution; the server's installs no client command."""
    assert tomllib.loads(CLIENT.read_text())["project"]["scripts"] == {"ocr": "ocr_pipeline_client.cli:main"}
    assert "ocr" not in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS]])
def test_every_command_has_help(command: list[str]) -> None:
    """`ocr [COMMAND] --help` exits 0 and says where the URL and key come from."""
    run = subprocess.run([sys.executable, "-m", "ocr_pipeline_client", *command, "--help"], capture_output=True,
                         text=True, cwd=REPO, timeout=60)
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


@pytest.mark.parametrize("argv", [
    ["--url", "http://a:1", "--json", "-q", "status", "JOB"], ["status", "JOB", "--url", "http://a:1", "--json", "-q"],
    ["--json", "status", "JOB", "--url", "http://a:1", "--quiet"],
])
def test_global_options_go_before_or_after_the_command(argv: list[str]) -> None:
    """--url, --json and -q are taken on either side of the command, and one given before is not reset after."""
    args = build_parser().parse_args(argv)
    assert (args.url, args.json, args.quiet, args.job) == ("http://a:1", True, True, "JOB")


def test_version_prints_the_installed_clients_version() -> None:
    """`ocr --version` exits 0 with the client distribution's version, as the installed metadata has it."""
    run = subprocess.run([sys.executable, "-m", "ocr_pipeline_client", "--version"], capture_output=True, text=True,
                         cwd=REPO, timeout=60)
    project = tomllib.loads(CLIENT.read_text())["project"]["version"]
    assert run.returncode == 0 and run.stdout.strip() == f"ocr {project}" == f"ocr {client_version()}"


@pytest.mark.parametrize(("argv", "force"), [
    (["get", "J", "--pdf"], False), (["get", "J", "--hocr", "--force"], True), (["text", "J", "-o", "f"], False),
    (["upload", "d", "--out", "d", "--force"], True), (["wait", "J", "--out", "d"], False),
])
def test_commands_that_write_files_take_force_and_default_to_not_replacing(argv: list[str], force: bool) -> None:
    """get, text, upload and wait take --force; without it nothing is replaced."""
    assert build_parser().parse_args(argv).force is force


def test_reprocess_takes_a_document_and_a_language() -> None:
    """`ocr reprocess DOC --lang deu` is a command of its own."""
    args = build_parser().parse_args(["reprocess", "DOC", "--lang", "deu"])
    assert (args.command, args.document, args.lang) == ("reprocess", "DOC", "deu")


@pytest.mark.parametrize(("filename", "suffix", "name"), [
    ("scan.pdf", ".ocr.pdf", "scan.ocr.pdf"), ("scan.pdf", ".hocr", "scan.hocr"),
    ("a/b/photo.jpeg", ".txt", "photo.txt"), ("", ".ocr.pdf", "document.ocr.pdf"), ("..", ".hocr", "document.hocr"),
    ("noext", ".ocr.pdf", "noext.ocr.pdf"), ("a/scan.pdf", "", "scan.pdf"), ("..", "", "document"),
])
def test_a_download_is_named_for_the_document_with_the_results_suffix(filename: str, suffix: str, name: str) -> None:
    """`get` saves in the current folder under the document's own name and a suffix no original has; the original
    keeps its name."""
    assert result_name(filename, suffix) == name
