"""How `ocr` shows jobs advancing: a bar per document and one overall on a terminal, plain lines elsewhere.

The bars are rich's, an optional extra (`pip install 'ocr-pipeline-client[progress]'`); without it a terminal
gets the plain lines too."""

from __future__ import annotations

import importlib.util
import sys
from typing import IO, Any, Protocol

from ocr_pipeline_client.models import JobStatus


def _pages(status: JobStatus | None) -> str:
    if status is None or status.page_count is None:
        return "?/? pages"
    return f"{status.pages_done}/{status.page_count} pages"


class Display(Protocol):
    def add(self, key: str, name: str) -> None: ...
    def update(self, key: str, status: JobStatus) -> None: ...
    def note(self, text: str) -> None: ...
    def close(self) -> None: ...


class PlainLines:
    """For logs and pipes: one line per change of a job's state or page count, and the overall count."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.names: dict[str, str] = {}
        self.seen: dict[str, tuple[str, int, int | None]] = {}
        self.finished: set[str] = set()

    def add(self, key: str, name: str) -> None:
        self.names[key] = name

    def update(self, key: str, status: JobStatus) -> None:
        now = (status.status, status.pages_done, status.page_count)
        if self.seen.get(key) == now:
            return
        self.seen[key] = now
        error = f" ({status.error.code})" if status.error else ""
        self.note(f"{self.names[key]}: {status.status}{error} {_pages(status)}")
        if status.is_final and key not in self.finished:
            self.finished.add(key)
            self.note(f"done {len(self.finished)}/{len(self.names)} documents")

    def note(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def close(self) -> None:
        pass


class Bars:
    """rich's live progress: one bar per document driven by pages_done/page_count, and an overall bar."""

    def __init__(self, out: IO[str]) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(file=out, force_terminal=True)
        self.progress = Progress(
            TextColumn("{task.description}", style="bold"), BarColumn(), TextColumn("{task.fields[count]}"),
            TextColumn("{task.fields[state]}"), TimeElapsedColumn(), console=self.console,
            refresh_per_second=8,
        )
        self.overall = self.progress.add_task("all", total=0, count="0/0 documents", state="")
        self.tasks: dict[str, Any] = {}
        self.finished: set[str] = set()
        self.started = False  # drawn from the first document on: an upload without --wait draws no bar

    def add(self, key: str, name: str) -> None:
        if not self.started:
            self.progress.start()
            self.started = True
        self.tasks[key] = self.progress.add_task(name, total=None, count="?/? pages", state="pending")
        self._overall()

    def update(self, key: str, status: JobStatus) -> None:
        state = f"{status.status} ({status.error.code})" if status.error else status.status
        total = status.page_count
        done = status.pages_done if status.status != "completed" else (total or status.pages_done)
        self.progress.update(self.tasks[key], total=total, completed=done, count=_pages(status), state=state)
        if status.is_final:
            self.finished.add(key)
        self._overall()

    def _overall(self) -> None:
        self.progress.update(self.overall, total=len(self.tasks), completed=len(self.finished),
                             count=f"{len(self.finished)}/{len(self.tasks)} documents")

    def note(self, text: str) -> None:
        # Printed above the live bars (rich keeps them at the bottom), or plainly before they start.
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def close(self) -> None:
        if self.started:
            self.progress.refresh()
            self.progress.stop()
            self.started = False


def has_bars() -> bool:
    """Whether the `progress` extra (rich) is installed."""
    return importlib.util.find_spec("rich") is not None


def display_for(out: IO[str] | None = None) -> Display:
    out = out or sys.stderr
    return Bars(out) if out.isatty() and has_bars() else PlainLines(out)
