"""Each worker keeps its temporary files in one folder of its own; the folders of dead workers are swept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from common.engine import scratch

# A worker that opens its folder, leaves a document copy in a job folder, says so, then waits to be killed.
_WORKER = """
import sys, time
from pathlib import Path
from common.engine import scratch
folder = scratch.worker_dir(Path(sys.argv[1]))
job = folder / "ocr-job-x"
job.mkdir()
(job / "original").write_bytes(b"a copy of someone's document")
print(folder, flush=True)
time.sleep(600)
"""


def _worker(root: Path) -> tuple[subprocess.Popen[str], Path]:
    process = subprocess.Popen([sys.executable, "-c", _WORKER, str(root)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, Path(process.stdout.readline().strip())


def test_a_killed_workers_folder_is_swept_when_a_worker_starts(tmp_path: Path) -> None:
    """kill -9 leaves the copy behind; the next worker to start removes it, and keeps a live worker's."""
    killed, killed_folder = _worker(tmp_path)
    alive, alive_folder = _worker(tmp_path)
    try:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        assert (killed_folder / "ocr-job-x" / "original").exists()  # what a killed worker leaves

        mine = scratch.worker_dir(tmp_path)
        assert mine == tmp_path / f"worker-{os.getpid()}"
        assert not killed_folder.exists()
        assert (alive_folder / "ocr-job-x" / "original").exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, alive_folder.name])
    finally:
        alive.kill()
        alive.wait(timeout=30)
    assert scratch.sweep(tmp_path) == 1 and not alive_folder.exists()
    assert mine.exists()  # our own folder is never swept while we live


def test_a_folder_left_by_a_dead_worker_with_our_pid_is_emptied(tmp_path: Path) -> None:
    """A reused pid finds its name taken by a dead worker's folder: it takes it over, empty."""
    stale = tmp_path / f"worker-{os.getpid()}"
    (stale / "ocr-job-old").mkdir(parents=True)
    (stale / "ocr-job-old" / "original").write_bytes(b"x")
    assert scratch.worker_dir(tmp_path) == stale
    assert [p.name for p in stale.iterdir()] == [".lock"]


def test_job_folders_live_in_the_worker_folder_and_go_after_the_job(tmp_path: Path) -> None:
    """A job's folder is made inside this worker's folder and removed when the job is done."""
    with scratch.job_dir("ocr-job-") as tmp:
        assert Path(tmp).parent == scratch.worker_dir()
    assert not Path(tmp).exists()


def test_a_root_open_to_others_is_not_used(tmp_path: Path) -> None:
    """A root others can write to (planted in a shared /tmp) is left alone: a private folder is used instead."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    (shared / "worker-1").mkdir()
    folder = scratch.worker_dir(shared)
    assert shared not in folder.parents and (shared / "worker-1").exists()
    assert folder.stat().st_mode & 0o077 == 0
