"""The `ocr` command against the real stack, run as a user runs it: a process, its output, its exit code."""

from __future__ import annotations

import ctypes
import errno
import io
import fcntl
import hashlib
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

from common.config import Settings
from common.rules import apikeys
from ocr_pipeline_client import Client
from ocrstack.supervise import fresh_signals
from tests.support import image_bytes, render_page, scanned_pdf

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
# The command the `ocr` console script runs (client/pyproject.toml's [project.scripts]; tests/unit/test_client_cli.py).
OCR = [sys.executable, "-m", "ocr_pipeline_client"]


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
        assert (out / f"{name}.ocr.pdf").read_bytes().startswith(b"%PDF-"), name
        assert "ocr_page" in (out / f"{name}.hocr").read_text(), name
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        f"{name}{suffix}" for name in expected for suffix in (".txt", ".ocr.pdf", ".hocr"))
    assert "\x1b[" not in run.stderr
    assert "done 3/3 documents" in run.stderr
    assert re.search(r"letter\.pdf: processing 1/2 pages|letter\.pdf: completed 2/2 pages", run.stderr)
    # Off a terminal stdout holds the job ids alone; the summary, one line per job, goes to stderr.
    assert len(run.stdout.split()) == 3 and all(UUID.fullmatch(line) for line in run.stdout.splitlines())
    summary = [line for line in run.stderr.splitlines() if line.split()[:1] and line.split()[0] in run.stdout.split()]
    assert len(summary) == 3 and all(" completed " in line for line in summary), run.stderr


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
    assert (tmp_path / "doc1.ocr.pdf").read_bytes().startswith(b"%PDF-")
    hocr = ocr(env, "get", jobs[1].job_id, "--hocr", "-o", str(tmp_path / "page.hocr"))
    assert hocr.returncode == 0 and "ocr_page" in (tmp_path / "page.hocr").read_text()

    removed = ocr(env, "rm", jobs[1].document_id)
    assert removed.returncode == 0 and removed.stdout == f"{jobs[1].document_id}\n"  # off a terminal: the id alone
    gone = ocr(env, "status", jobs[1].job_id)
    assert gone.returncode == 1 and gone.stderr.strip() == f"ocr: error: job_not_found: {_not_found(client, jobs[1].job_id)}"
    again = ocr(env, "rm", jobs[1].document_id)
    assert again.returncode == 1 and again.stderr.strip() == f"ocr: no document {jobs[1].document_id}"


def _not_found(client: Client, job_id: str) -> str:
    from ocr_pipeline_client import NotFound

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


def _checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path: the user's files as they are."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_get_pdf_beside_the_scan_never_replaces_it_and_refuses_a_taken_name(env: dict[str, str],
                                                                            tmp_path: Path) -> None:
    """`ocr get JOB --pdf` in the scan's folder saves scan.ocr.pdf and leaves scan.pdf byte for byte; a second
    get is refused (output_exists, exit 1, the name said) and changes nothing; --force replaces the result."""
    (tmp_path / "scan.pdf").write_bytes(scanned_pdf([["ORIGINAL scan kept"]]))
    (tmp_path / "scan.txt").write_text("the user's own notes on the scan\n")
    job = ocr(env, "upload", "scan.pdf", "--wait", cwd=tmp_path)
    assert job.returncode == 0, job.stderr
    job_id = job.stdout.strip()
    before = _checksums(tmp_path)

    got = ocr(env, "get", job_id, "--pdf", cwd=tmp_path)

    assert got.returncode == 0, got.stderr
    assert got.stdout == "scan.ocr.pdf\n"  # off a terminal: the saved path alone
    assert (tmp_path / "scan.ocr.pdf").read_bytes().startswith(b"%PDF-")
    after = _checksums(tmp_path)
    assert {k: after[k] for k in before} == before and set(after) - set(before) == {"scan.ocr.pdf"}

    again = ocr(env, "get", job_id, "--pdf", cwd=tmp_path)
    assert again.returncode == 1 and again.stdout == ""
    [line] = again.stderr.splitlines()
    assert line.startswith("ocr: error: output_exists: scan.ocr.pdf exists") and "--force" in line, line
    text = ocr(env, "text", job_id, "-o", "scan.txt", cwd=tmp_path)
    assert text.returncode == 1 and "output_exists: scan.txt exists" in text.stderr
    assert _checksums(tmp_path) == after
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []

    (tmp_path / "scan.ocr.pdf").write_bytes(b"an older result")
    forced = ocr(env, "get", job_id, "--pdf", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "scan.ocr.pdf").read_bytes().startswith(b"%PDF-")
    assert _checksums(tmp_path)["scan.pdf"] == before["scan.pdf"]


def test_upload_a_folder_with_its_results_into_itself_keeps_every_original(env: dict[str, str], api_key: str,
                                                                           stack: Any, tmp_path: Path) -> None:
    """`upload dir --out dir` saves NAME.txt/.ocr.pdf/.hocr beside the originals, which keep their checksums; run
    again it is refused before anything is sent; with --force it replaces its own results, never an original,
    and does not send the earlier results (*.ocr.pdf) back as documents."""
    scans = tmp_path / "scans"
    (scans / "sub").mkdir(parents=True)
    (scans / "scan.pdf").write_bytes(scanned_pdf([["FOLDER original one"]]))
    (scans / "sub" / "photo.png").write_bytes(image_bytes(["FOLDER photo two"]))
    (scans / "scan.hocr.notes").write_text("a file of the user's that is no document\n")
    originals = _checksums(scans)

    first = ocr(env, "upload", str(scans), "--out", str(scans))

    assert first.returncode == 0, first.stderr
    saved = _checksums(scans)
    assert {k: saved[k] for k in originals} == originals
    assert set(saved) - set(originals) == {f"{name}{suffix}" for name in ("scan", "sub/photo")
                                           for suffix in (".txt", ".ocr.pdf", ".hocr")}

    client = Client(env["OCR_URL"], api_key)
    documents = len(list(client.iter_documents()))
    refused = ocr(env, "upload", str(scans), "--out", str(scans))
    assert refused.returncode == 1 and refused.stdout == ""
    assert f"ocr: error: output_exists: {scans / 'scan.txt'} exists (and 5 more)" in refused.stderr
    assert _checksums(scans) == saved
    assert len(list(client.iter_documents())) == documents  # nothing was sent

    forced = ocr(env, "upload", str(scans), "--out", str(scans), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "left out 2 result(s) of an earlier run (*.ocr.pdf)" in forced.stderr
    assert len(forced.stdout.split()) == 2  # two documents sent again, not four
    final = _checksums(scans)
    assert set(final) == set(saved) and {k: final[k] for k in originals} == originals
    assert "folder photo two" in _words((scans / "sub" / "photo.txt").read_text())


def test_every_command_reading_a_result_takes_the_document_id_ls_prints(env: dict[str, str], tmp_path: Path) -> None:
    """status, text, get and wait take a document id (its current job); reprocess takes either id and prints the new
    job id alone; once that job completes the document id reads it; rm given a job id names its document."""
    (tmp_path / "zeugnis.png").write_bytes(image_bytes(["Zeugnis und Urkunde"]))
    uploaded = ocr(env, "upload", "zeugnis.png", "--wait", cwd=tmp_path)
    assert uploaded.returncode == 0, uploaded.stderr
    job_id = uploaded.stdout.strip()
    listed = ocr(env, "ls", "-q")
    assert listed.returncode == 0, listed.stderr
    [document_id] = listed.stdout.split()
    assert document_id != job_id

    status = ocr(env, "status", document_id)
    assert status.returncode == 0 and f"job       {job_id}" in status.stdout and document_id in status.stdout
    assert ocr(env, "status", document_id, "-q").stdout == "completed\n"
    text = ocr(env, "text", document_id, "--json")
    assert text.returncode == 0, text.stderr
    assert json.loads(text.stdout)["job_id"] == job_id and "urkunde" in _words(json.loads(text.stdout)["text"])
    got = ocr(env, "get", document_id, "--hocr", cwd=tmp_path)
    assert got.returncode == 0 and "ocr_page" in (tmp_path / "zeugnis.hocr").read_text()
    waited = ocr(env, "wait", document_id)
    assert waited.returncode == 0 and waited.stdout == f"{job_id}\n"

    again = ocr(env, "reprocess", document_id, "--lang", "deu")
    assert again.returncode == 0, again.stderr
    new_job = again.stdout.strip()
    assert UUID.fullmatch(new_job) and new_job != job_id and f"ocr wait {new_job}" in again.stderr
    assert ocr(env, "wait", new_job).returncode == 0
    now = json.loads(ocr(env, "status", document_id, "--json").stdout)
    assert now["job_id"] == new_job and now["lang"] == "deu"
    by_job = ocr(env, "--json", "reprocess", job_id)  # an older job's id names the same document
    assert by_job.returncode == 0, by_job.stderr
    assert json.loads(by_job.stdout)["document_id"] == document_id
    assert ocr(env, "wait", json.loads(by_job.stdout)["job_id"]).returncode == 0

    wrong = ocr(env, "rm", new_job)
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == (f"ocr: no document {new_job}; {new_job} is a job of document {document_id} "
                                    f"(ocr rm {document_id} deletes it)")
    assert ocr(env, "status", document_id).returncode == 0  # nothing was deleted


def test_scripts_capture_the_job_id_alone_and_options_go_before_the_command(env: dict[str, str],
                                                                            tmp_path: Path) -> None:
    """`job=$(ocr upload FILE)` holds the job id and nothing else; --url and --json work before the command;
    on a terminal the upload prints its table, and -q brings the id alone back."""
    (tmp_path / "scan.png").write_bytes(image_bytes(["SCRIPTED upload"]))
    script = ('ocr() { "$PYTHON" -m ocr_pipeline_client "$@"; }\n'
              'job=$(ocr --url "$URL" upload scan.png) || exit 9\n'
              'printf "%s" "$job" > job.txt\n'
              'ocr --url "$URL" --json wait "$job"\n')
    shell_env = {**env, "PYTHON": sys.executable, "URL": env["OCR_URL"], "OCR_URL": ""}
    run = subprocess.run(["bash", "-c", script], env=shell_env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=240)
    assert run.returncode == 0, run.stderr
    job_id = (tmp_path / "job.txt").read_text()
    assert UUID.fullmatch(job_id), job_id
    [job] = json.loads(run.stdout)
    assert job["job_id"] == job_id and job["status"] == "completed"
    assert f"follow them with: ocr wait {job_id}" in run.stderr

    code, drawn = _in_a_terminal([*OCR, "upload", str(tmp_path / "scan.png")], env, timeout=60)
    assert code == 0, drawn
    assert re.search(rf"{UUID.pattern}  pending  scan\.png", ANSI.sub("", drawn)), drawn
    code, drawn = _in_a_terminal([*OCR, "upload", str(tmp_path / "scan.png"), "-q"], env, timeout=60)
    assert code == 0, drawn
    screen = ANSI.sub("", drawn)
    assert "pending" not in screen and UUID.search(screen), screen
