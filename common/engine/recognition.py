"""What ocr-process asks of an OCR engine, and what a run gives back: pages as they are read, then its outputs.

Apart from the tesseract engine, so the rules that store outputs (and the functions importing them) load
neither Pillow nor pikepdf.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

from common.models import PageResult


@dataclass(frozen=True)
class Outputs:
    """The files an engine run wrote for the whole document, in the folder its caller gave; None: not made."""

    searchable_pdf: Path | None = None
    hocr: Path | None = None


class Recognition:
    """One document being read: iterate it for the pages as they are read, then `outputs` says what was written.

    Pages stream so the caller records each at once (memory stays flat, progress exact); the outputs
    are assembled from every page, so they exist only after the last one. `run` is a generator that
    yields the pages and returns the outputs; a fake engine builds one from its own generator.
    """

    def __init__(self, run: Generator[PageResult, None, Outputs]) -> None:
        self._run = run
        self._outputs: Outputs | None = None

    def __iter__(self) -> Iterator[PageResult]:
        return self

    def __next__(self) -> PageResult:
        try:
            return next(self._run)
        except StopIteration as done:
            self._outputs = done.value
            raise StopIteration from None

    @property
    def outputs(self) -> Outputs:
        if self._outputs is None:
            raise RuntimeError("the outputs are known once every page has been read")
        return self._outputs

    def close(self) -> None:
        """Stop early (e.g. the job was taken over): pages not started are dropped, the work folder removed."""
        self._run.close()

    def __enter__(self) -> Recognition:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


class OcrEngine(Protocol):
    """What ocr-process needs from an engine; a test can pass a whole fake one."""

    def recognise(
        self, path: Path, media_type: str, lang: str, on_page_count: Callable[[int], None],
        output_dir: Path | None = None,
    ) -> Recognition:
        """Read `path` page by page; with `output_dir`, also write the searchable PDF and hOCR there."""
        ...
