"""The `ocr` command against the real stack, run as a user runs it: a process, its output, its exit code."""

from __future__ import annotations

import ctypes
import errno
import io
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from common.client import Client
from common.config import Settings
from common.rules import apikeys
from ocrstack.supervise import fresh_signals
from tests.support import image_bytes, render_page, scanned_pdf

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
# The command the `ocr` console script runs (pyproject's [project.scripts]; tests/unit/test_client_cli.py).
OCR = [sys.executable, "-m", "common.client"]


@pytest.fixture
def api_key(settings: Settings) -> str:
    """A user key of the test's own: its own documents and rate-limit buckets."""
    return apikeys.create(settings, f"cli-{uuid.uuid4().hex[:8]}", apikeys.Role.USER).token


@pytest.fixture
def env(stack: Any, api_key: str, tmp_path: Path) -> dict[str, str]:
    """The environment a user sets: OCR_URL and OCR_API_KEY (and no config file of the machine's)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OCR_")}
    return {**clean, "OCR_URL": stack.gateway_url, "OCR_API_KEY": api_key,
            "OCR_CONFIG": "", "XDG_CONFIG_HOME": str(tmp_path / "config")}


def ocr(env: dict[str, str], *args: str, cwd: Path | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OCR, *args], env=env, cwd=cwd or REPO, capture_output=True, text=True, timeout=240,
                          **kw)


def _words(text: str) -> str:
    return " ".join(text.split()).lower()


def test_folder_of_mixed_documents_with_wait_ends_with_every_output_on_disk(env: dict[str, str],
                                                                              tmp_path: Path) -> None:
    """A folder (recursive, mixed types, a note that is no document) uploaded with --wait --out: exit 0, and each
    document's text, searchable PDF and hOCR saved under its relative name; progress as plain lines off a tty."""
    scans = tmp_path / "scans"
    (scans / "2026" / "march").mkdir(parents=True)
    (scans / "letter.pdf").write_bytes(scanned_pdf([["LETTER first apple"], ["LETTER second banana"]]))
    (scans / "receipt.png").write_bytes(image_bytes(["RECEIPT coffee paid"]))
    (scans / "2026" / "march" / "invoice.jpg").write_bytes(image_bytes(["INVOICE 4711 march"], "JPEG"))
    (scans / "notes.txt").write_text("not a document: a folder upload leaves it out")
    out = tmp_path / "out"

    run = ocr(env, "upload", str(scans), "--wait", "--out", str(out))

    assert run.returncode == 0, run.stderr
    expected = {"letter": "letter first apple", "receipt": "receipt coffee paid", "2026/march/invoice": "invoice 4711"}
    for name, words in expected.items():
        assert words in _words((out / f"{name}.txt").read_text()), name
        assert (out / f"{name}.pdf").read_bytes().startswith(b"%PDF-"), name
        assert "ocr_page" in (out / f"{name}.hocr").read_text(), name
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        f"{name}{suffix}" for name in expected for suffix in (".txt", ".pdf", ".hocr"))
    assert "\x1b[" not in run.stderr
    assert "done 3/3 documents" in run.stderr
    assert re.search(r"letter\.pdf: processing 1/2 pages|letter\.pdf: completed 2/2 pages", run.stderr)
    # stdout: one summary line per job, all completed.
    summary = run.stdout.strip().splitlines()
    assert len(summary) == 3 and all(" completed " in line for line in summary)


def _in_a_terminal(command: list[str], env: dict[str, str], interrupt_when: str | None = None,
                   timeout: float = 180) -> tuple[int, str]:
    """Run `command` with a pseudo-terminal (120 columns) as its stdin, stdout and stderr; return its exit code and
    everything it drew. With `interrupt_when`, send it SIGINT (Ctrl-C) once that text has appeared."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    # SIGINT as a terminal's user has it: a test run started in the background (`cmd &`) inherits SIGINT
    # ignored, so Python installs no KeyboardInterrupt handler, and a CI runner may start it with SIGINT blocked,
    # so the signal stays pending. The stack gives its own children the same clean state.
    proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env={**env, "TERM": "xterm-256color"},
                            cwd=REPO, close_fds=True, preexec_fn=fresh_signals)
    os.close(slave)
    drawn = b""
    interrupts: list[float] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError as e:  # EIO: the child closed the terminal
                    if e.errno != errno.EIO:
                        raise
                    chunk = b""
                if not chunk and proc.poll() is not None:
                    break
                drawn += chunk
            elif proc.poll() is not None:
                break
            screen = ANSI.sub("", drawn.decode("utf-8", "replace"))
            if interrupt_when and interrupt_when in screen and "interrupted" not in screen and _press_again(interrupts):
                # Ctrl-C, and again (as a user would) if the command neither exits nor says so within 2 s: under
                # a loaded CI run a first SIGINT went unheeded. The child's signal state is kept for the failure.
                drawn += f"\n[{_signal_state(proc.pid)}]\n".encode()
                proc.send_signal(signal.SIGINT)
                interrupts.append(time.monotonic())
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, drawn.decode("utf-8", "replace")


def _press_again(pressed: list[float]) -> bool:
    return not pressed or (len(pressed) < 3 and time.monotonic() - pressed[-1] > 2)


def _signal_state(pid: int) -> str:
    try:
        return " ".join(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Sig"))
    except OSError:
        return "gone"


def full_pages(count: int, word: str) -> bytes:
    """A PDF of `count` A4 pages full of text (30 lines each): long enough to read that a poll of its status sees
    it part-way however quiet the machine is, and no more than one chunk (OCR_CHUNK_PAGES is 8)."""
    pages = [render_page([f"{word} {n} line {i} of a long page of the report" for i in range(30)], (2480, 3508))
             for n in range(1, count + 1)]
    out = io.BytesIO()
    pages[0].save(out, format="PDF", save_all=True, append_images=pages[1:], resolution=300)
    return out.getvalue()


def test_progress_bars_advance_in_a_terminal(env: dict[str, str], tmp_path: Path) -> None:
    """On a terminal, --wait draws a bar per document that advances page by page, and an overall bar."""
    pdf = tmp_path / "four pages.pdf"
    pdf.write_bytes(full_pages(4, "PAGE"))
    png = tmp_path / "cover.png"
    png.write_bytes(image_bytes(["COVER sheet"]))

    code, drawn = _in_a_terminal([*OCR, "upload", str(pdf), str(png), "--wait"], env)

    assert code == 0, drawn
    assert "\x1b[" in drawn  # redrawn in place, not printed line by line
    screen = ANSI.sub("", drawn)
    pages = [int(n) for n in re.findall(r"four pages\.pdf[^\n]*?(\d)/4 pages", screen)]
    assert pages and pages[-1] == 4, screen[-2000:]
    assert pages == sorted(pages) and len(set(pages)) >= 2, pages  # seen part-way, never going back
    assert "━" in screen  # rich's bar
    overall = [int(n) for n in re.findall(r"all[^\n]*?(\d)/2 documents", screen)]
    assert overall[0] == 0 and overall[-1] == 2 and overall == sorted(overall), overall


def test_ctrl_c_leaves_the_jobs_running_and_says_how_to_resume(env: dict[str, str], tmp_path: Path) -> None:
    """Ctrl-C while waiting exits 130 and prints `ocr wait JOB`; that command then sees the job to its end."""
    pdf = tmp_path / "long.pdf"
    pdf.write_bytes(full_pages(8, "CHAPTER"))

    code, drawn = _in_a_terminal([*OCR, "upload", str(pdf), "--wait", "--out", str(tmp_path / "out")], env,
                                 interrupt_when="pages")

    assert code == 130, drawn
    screen = ANSI.sub("", drawn)
    resume = re.search(r"ocr wait ([0-9a-f-]{36}) --out (\S+)", screen)
    assert resume, screen[-2000:]
    job_id = resume.group(1)
    done = ocr(env, "wait", job_id, "--out", resume.group(2), "--json")
    assert done.returncode == 0, done.stderr
    [job] = json.loads(done.stdout)
    assert job["job_id"] == job_id and job["status"] == "completed"
    assert "chapter 8 line 29" in _words((tmp_path / "out" / "long.txt").read_text())


def test_failed_document_exits_1_and_prints_its_code(env: dict[str, str], tmp_path: Path) -> None:
    """A document whose job fails makes the run exit 1, naming the job's error code; the others still save."""
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 200)
    (tmp_path / "fine.png").write_bytes(image_bytes(["FINE page here"]))

    run = ocr(env, "upload", str(tmp_path / "broken.pdf"), str(tmp_path / "fine.png"), "--out", str(tmp_path / "o"))

    assert run.returncode == 1
    assert "broken.pdf: failed: corrupt_document" in run.stderr
    assert "fine page here" in _words((tmp_path / "o" / "fine.txt").read_text())
    assert not (tmp_path / "o" / "broken.txt").exists()


def _without_file_permission_override() -> None:
    """As root, drop the capabilities that ignore file modes (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) from the
    child, so a mode-000 file is unreadable to it as to any user."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_capbset_drop = 24
        for capability in (1, 2):
            if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("case", ["bad path", "unreadable file", "unreachable gateway", "wrong key"])
def test_each_refusal_is_one_clear_line_with_its_exit_code(case: str, env: dict[str, str], tmp_path: Path) -> None:
    """A path that is not there (2), a file that cannot be read (1), a gateway nobody answers at (1) and a key
    the service refuses (1): one line on stderr saying which, nothing on stdout, nothing uploaded."""
    scan = tmp_path / "scan.png"
    scan.write_bytes(image_bytes(["HELLO"]))
    kw: dict[str, Any] = {}
    if case == "bad path":
        args, code, says = [str(tmp_path / "missing.pdf")], 2, f"no such file or folder: {tmp_path / 'missing.pdf'}"
    elif case == "unreadable file":
        scan.chmod(0)
        kw["preexec_fn"] = _without_file_permission_override
        args, code, says = [str(scan)], 1, f"cannot read {scan}: Permission denied"
    elif case == "unreachable gateway":
        port = _free_port()
        env = {**env, "OCR_URL": f"http://127.0.0.1:{port}"}
        args, code, says = [str(scan)], 1, f"cannot reach http://127.0.0.1:{port} (connection refused)"
    else:
        env = {**env, "OCR_API_KEY": "ocr_000000000000_" + "x" * 43}
        args, code, says = [str(scan)], 1, "the service refused the API key (invalid_api_key"

    run = ocr(env, "upload", *args, "--wait", **kw)

    assert run.returncode == code, run.stderr
    assert run.stdout == ""
    [line] = run.stderr.splitlines()
    assert line.startswith("ocr: error: ") and says in line, line


def test_library_commands_list_search_read_download_and_delete(env: dict[str, str], api_key: str, stack: Any,
                                                                tmp_path: Path) -> None:
    """ls (one page, --all following cursors), search, status, text, get --pdf/--hocr and rm, on documents the
    key uploaded through the SDK."""
    client = Client(stack.gateway_url, api_key)
    words = ["ALPHA walrus one", "BRAVO pelican two", "CHARLIE walrus three"]
    jobs = [client.upload(image_bytes([w]), filename=f"doc{i}.png") for i, w in enumerate(words)]
    for job in jobs:
        assert client.wait(job.job_id, timeout=120).status == "completed"

    page = ocr(env, "ls", "--limit", "2")
    assert page.returncode == 0 and len(page.stdout.splitlines()) == 2
    assert "--all lists every one" in page.stderr
    every = ocr(env, "ls", "--limit", "1", "--all", "--json")
    assert every.returncode == 0, every.stderr
    assert [item["filename"] for item in json.loads(every.stdout)] == ["doc2.png", "doc1.png", "doc0.png"]
    oldest = ocr(env, "ls", "--all", "--oldest-first", "--json", "--status", "completed", "--type", "image/*")
    assert [item["filename"] for item in json.loads(oldest.stdout)] == ["doc0.png", "doc1.png", "doc2.png"]

    found = ocr(env, "search", "walrus", "--all", "--json")
    assert found.returncode == 0, found.stderr
    assert sorted(item["filename"] for item in json.loads(found.stdout)) == ["doc0.png", "doc2.png"]
    plain = ocr(env, "search", "pelican")
    assert plain.returncode == 0 and "doc1.png" in plain.stdout and "pelican" in plain.stdout.lower()  # the snippet

    status = ocr(env, "status", jobs[1].job_id)
    assert status.returncode == 0 and "completed, 1/1 pages" in status.stdout
    text = ocr(env, "text", jobs[1].job_id)
    assert text.returncode == 0 and "bravo pelican two" in _words(text.stdout)
    pdf = ocr(env, "get", jobs[1].job_id, "--pdf", cwd=tmp_path)
    assert pdf.returncode == 0, pdf.stderr
    assert (tmp_path / "doc1.pdf").read_bytes().startswith(b"%PDF-")
    hocr = ocr(env, "get", jobs[1].job_id, "--hocr", "-o", str(tmp_path / "page.hocr"))
    assert hocr.returncode == 0 and "ocr_page" in (tmp_path / "page.hocr").read_text()

    removed = ocr(env, "rm", jobs[1].document_id)
    assert removed.returncode == 0 and removed.stdout.strip() == f"deleted {jobs[1].document_id}"
    gone = ocr(env, "status", jobs[1].job_id)
    assert gone.returncode == 1 and gone.stderr.strip() == f"ocr: error: job_not_found: {_not_found(client, jobs[1].job_id)}"
    again = ocr(env, "rm", jobs[1].document_id)
    assert again.returncode == 1 and again.stderr.strip() == f"ocr: no document {jobs[1].document_id}"


def _not_found(client: Client, job_id: str) -> str:
    from common.client import NotFound

    with pytest.raises(NotFound) as caught:
        client.status(job_id)
    return caught.value.message


def _tiny_png(word: str) -> bytes:
    import io

    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (420, 90), 255)
    ImageDraw.Draw(image).text((10, 15), word, font=ImageFont.load_default(size=40), fill=0)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_more_uploads_than_the_rate_limit_allows_all_get_through(env: dict[str, str], tmp_path: Path) -> None:
    """Past upload's bucket (30 per key in stack.yml) the service answers 429; the command waits as Retry-After
    says, tells so on stderr, and every file is accepted in the end."""
    for n in range(34):
        (tmp_path / f"page{n:02}.png").write_bytes(_tiny_png(f"TINY {n}"))

    run = ocr(env, "upload", str(tmp_path), "--json")

    assert run.returncode == 0, run.stderr
    accepted = json.loads(run.stdout)
    assert len(accepted) == 34 and all(item["status"] == "pending" for item in accepted)
    assert "ocr: rate_limited; retrying in" in run.stderr
