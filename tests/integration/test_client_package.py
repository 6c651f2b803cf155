"""The client's wheel, built from client/ and installed into a virtual environment of its own with urllib3 alone
(no index: the wheels the bootstrap keeps in the venv), used against the real stack as a user of it would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from common.config import Settings
from common.rules import apikeys
from tests.support import image_bytes, scanned_pdf

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# Filled by local-stack/bootstrap with the pinned urllib3 (to run the client) and setuptools (to build it).
WHEELHOUSE = Path(sys.prefix) / "client-wheelhouse"
# What the server needs and the client must do without.
SERVER_PACKAGES = ["common", "ocrstack", "sqlalchemy", "flask", "minio", "redis", "pikepdf", "rich"]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that points Python or pip at the test's own venv or settings."""
    kept = {k: v for k, v in os.environ.items()
            if not k.startswith(("PYTHON", "PIP_", "OCR_", "VIRTUAL_ENV", "XDG_CONFIG"))}
    return {**kept, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


def run(command: list[Any], cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 240) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(part) for part in command], cwd=cwd, env=env or clean_env(), capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment holding the client's wheel and what it declares, nothing else."""
    assert sorted(p.name.split("-")[0] for p in WHEELHOUSE.glob("*.whl")) == ["setuptools", "urllib3"], (
        f"the client's wheelhouse {WHEELHOUSE} is missing or incomplete: run ./local-stack/bootstrap")
    root = tmp_path_factory.mktemp("client")
    # Built from a copy: the build writes into its source folder, and the copy shows client/ stands alone.
    source = root / "source"
    shutil.copytree(REPO / "client", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index", "--find-links", WHEELHOUSE,
         "--wheel-dir", root / "dist", source], cwd=root)
    [wheel] = (root / "dist").glob("ocr_pipeline_client-*-py3-none-any.whl")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=root)
    run([venv / "bin" / "python", "-m", "pip", "install", "--no-index", "--find-links", WHEELHOUSE, wheel], cwd=root)
    return venv


@pytest.fixture
def user_env(stack: Any, settings: Settings, tmp_path: Path) -> dict[str, str]:
    """OCR_URL and a user key of the test's own, as a user of the installed client sets them."""
    key = apikeys.create(settings, f"wheel-{uuid.uuid4().hex[:8]}", apikeys.Role.USER).token
    return clean_env(OCR_URL=stack.gateway_url, OCR_API_KEY=key, OCR_CONFIG="",
                     XDG_CONFIG_HOME=str(tmp_path / "config"))


def test_the_wheel_installs_the_client_and_urllib3_alone(client_venv: Path, tmp_path: Path) -> None:
    """In the client's venv: the client and urllib3 (and the venv's own pip), none of the server's packages, and
    `ocr` is the client's console script."""
    listed = run([client_venv / "bin" / "python", "-m", "pip", "list", "--format", "json"], cwd=tmp_path)
    installed = {p["name"].lower() for p in json.loads(listed.stdout)} - {"pip", "setuptools"}
    assert installed == {"ocr-pipeline-client", "urllib3"}
    probe = ("import importlib.util, json, sys\n"
             "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}))")
    found = run([client_venv / "bin" / "python", "-c", probe, "ocr_pipeline_client", *SERVER_PACKAGES], cwd=tmp_path)
    assert json.loads(found.stdout) == {"ocr_pipeline_client": True, **{m: False for m in SERVER_PACKAGES}}
    version = run([client_venv / "bin" / "ocr", "--version"], cwd=tmp_path)
    assert version.stdout.strip() == "ocr 0.1.0"


def test_ocr_from_the_wheel_uploads_waits_and_saves_every_output(client_venv: Path, user_env: dict[str, str],
                                                                 tmp_path: Path) -> None:
    """`ocr upload FILE --wait --out DIR` from the installed wheel: exit 0, the text, searchable PDF and hOCR saved;
    without rich (no progress extra) the progress is plain lines."""
    (tmp_path / "scan.pdf").write_bytes(scanned_pdf([["WHEEL first page"], ["WHEEL second page"]]))
    out = tmp_path / "out"

    done = run([client_venv / "bin" / "ocr", "upload", "scan.pdf", "--wait", "--out", out], cwd=tmp_path,
               env=user_env)

    assert "wheel second page" in " ".join((out / "scan.txt").read_text().split()).lower()
    assert (out / "scan.ocr.pdf").read_bytes().startswith(b"%PDF-")
    assert "ocr_page" in (out / "scan.hocr").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["scan.hocr", "scan.ocr.pdf", "scan.txt"]
    assert "done 1/1 documents" in done.stderr and "\x1b[" not in done.stderr


SDK_SCRIPT = """
import json, os, sys
from ocr_pipeline_client import Client

client = Client(os.environ["OCR_URL"], os.environ["OCR_API_KEY"])
job = client.upload(sys.argv[1], lang="eng")
done = client.wait(job.job_id, timeout=180, raise_on_failure=True)
saved = {kind: str(client.download(job.document_id, kind, sys.argv[2]).path) for kind in ("text", "pdf", "hocr")}
print(json.dumps({"status": done.status, "saved": saved}))
"""


def test_the_sdk_from_the_wheel_downloads_a_documents_results_into_a_folder(client_venv: Path,
                                                                           user_env: dict[str, str],
                                                                           tmp_path: Path) -> None:
    """`Client.download(document_id, kind, folder)` in the client's venv saves NAME.txt, NAME.ocr.pdf and NAME.hocr."""
    (tmp_path / "receipt.png").write_bytes(image_bytes(["WHEEL receipt paid"]))
    (tmp_path / "results").mkdir()

    done = run([client_venv / "bin" / "python", "-c", SDK_SCRIPT, "receipt.png", "results"], cwd=tmp_path,
               env=user_env)

    answer = json.loads(done.stdout)
    results = tmp_path / "results"
    assert answer == {"status": "completed", "saved": {"text": "results/receipt.txt",
                                                       "pdf": "results/receipt.ocr.pdf",
                                                       "hocr": "results/receipt.hocr"}}
    assert "wheel receipt paid" in " ".join((results / "receipt.txt").read_text().split()).lower()
    assert (results / "receipt.ocr.pdf").read_bytes().startswith(b"%PDF-")
    assert "ocr_page" in (results / "receipt.hocr").read_text()
