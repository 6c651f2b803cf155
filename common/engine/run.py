"""The one way the engine runs a program (tesseract, pdftotext, pdftoppm, pdfunite): a timeout, logs, our errors."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence

from common.errors import OcrError, OcrTimeout
from common.logging import get_logger

log = get_logger()


def run(args: Sequence[str], timeout: float, env: dict[str, str] | None = None,
        failure: type[OcrError] = OcrError) -> bytes:
    """Run to completion and return stdout; a non-zero exit or a timeout raises with the program named.

    A timeout is OcrTimeout and a program that cannot start OcrError, whoever runs it; `failure` is what
    a non-zero exit means to the caller (pdftoppm failing on a page: the PDF is corrupt).
    """
    started = time.monotonic()
    try:
        done = subprocess.run(list(args), capture_output=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as e:
        raise OcrTimeout(f"{args[0]} took longer than {timeout:g} s") from e
    except OSError as e:
        raise OcrError(f"{args[0]} could not be started: {e}") from e
    stderr = done.stderr.decode(errors="replace").strip()
    log.debug("process.ran", program=args[0], args=list(args[1:]), returncode=done.returncode,
              duration_ms=round((time.monotonic() - started) * 1000, 1), stderr=stderr[-2000:])
    if done.returncode != 0:
        # The program's own lines (poppler repeats "Syntax Error: ..." per object) are for the log only:
        # the message a user reads is one sentence, and the detail goes with the error to the job's log.
        log.warning("process.failed", program=args[0], returncode=done.returncode, stderr=stderr[-2000:])
        raise failure(f"{args[0]} failed with exit code {done.returncode}", detail=_last_line(stderr))
    return done.stdout


def _last_line(stderr: str) -> str | None:
    """The tool's last line of complaint, short, for the error's detail (the log has the whole stderr)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1][:300] if lines else None
