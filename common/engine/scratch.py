"""Each worker process's temporary files under one folder of its own, and the folders of dead workers swept.

A worker killed mid-job (kill -9, out of memory, a gateway restart) never runs its clean-up, so the
copy of a document it was reading would stay in the temporary folder for good. Every job's files live
under `<root>/worker-<pid>/`, whose `.lock` the process holds with flock for its lifetime; the kernel
drops that lock when the process dies, however it dies. A process opening its folder removes every
sibling whose lock it can take: only the folders of dead workers, whatever pids were reused since.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path

from common.logging import get_logger

log = get_logger()

_LOCK = ".lock"
_guard = threading.Lock()
# root -> (pid that opened it, its folder, the open lock file keeping it alive): one folder per process.
_mine: dict[Path, tuple[int, Path, int]] = {}


def default_root() -> Path:
    """One root per user, so workers of different users never meet (or fail on each other's folders)."""
    return Path(tempfile.gettempdir()) / f"ocr-pipeline-{os.getuid()}"


def worker_dir(root: Path | None = None) -> Path:
    """This process's folder under `root` (made, locked and dead siblings swept on first use; again after a fork)."""
    root = root or default_root()
    with _guard:
        held = _mine.get(root)
        if held is not None and held[0] == os.getpid():
            return held[1]
        if held is not None:
            # Forked: the parent's lock is shared with us through the inherited descriptor; a folder of our own.
            os.close(held[2])
        folder, fd = _open(root)
        _mine[root] = (os.getpid(), folder, fd)
    removed = sweep(folder.parent)
    if removed:
        log.info("scratch.swept", folders=removed)
    return folder


def _open(root: Path) -> tuple[Path, int]:
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    found = os.lstat(root)
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid() or found.st_mode & 0o077:
        # Someone else's (or a link) in a shared /tmp: documents never go there, nor is anything swept in it.
        log.warning("scratch.root_untrusted", root=str(root))
        root = Path(tempfile.mkdtemp(prefix="ocr-pipeline-"))
    folder = root / f"worker-{os.getpid()}"
    while True:
        folder.mkdir(mode=0o700, exist_ok=True)
        try:
            fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            continue  # swept between mkdir and open, as a folder without a lock: make it again
        fcntl.flock(fd, fcntl.LOCK_EX)  # a sweeper may hold it for a moment (our pid, reused)
        try:
            if os.stat(folder / _LOCK).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the sweeper removed the folder of the dead worker whose pid we have: again
    # A previous owner of this pid died here: nothing in the folder is ours.
    for entry in folder.iterdir():
        if entry.name == _LOCK:
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    return folder, fd


def sweep(root: Path) -> int:
    """Remove the worker folders under `root` whose owner is dead (its lock can be taken); returns how many."""
    removed = 0
    for folder in root.glob("worker-*"):
        if any(held[1] == folder and held[0] == os.getpid() for held in _mine.values()):
            continue
        try:
            fd = os.open(folder / _LOCK, os.O_RDWR)
        except FileNotFoundError:
            # Killed before its lock file was made, or mid-sweep; nobody can hold it.
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
            continue
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live worker
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
        finally:
            os.close(fd)
    return removed


def job_dir(prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A temporary folder inside this worker's folder (removed on exit, or by the next sweep if we die)."""
    return tempfile.TemporaryDirectory(prefix=prefix, dir=worker_dir())
