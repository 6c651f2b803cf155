"""A recognition streams pages, then names its outputs; a whole fake engine needs only a generator."""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path

import pytest

from common.engine.recognition import OcrEngine, Outputs, Recognition
from common.models import PageResult


def page(number: int) -> PageResult:
    return PageResult(number=number, text=f"page {number}", confidence=90.0, method="ocr", width=10, height=10,
                      duration_ms=1)


class FakeEngine:
    """Two pages and an hOCR file, as a test engine would give them: no tesseract, no PDF."""

    def __init__(self) -> None:
        self.read: list[int] = []
        self.finished = False

    def recognise(self, path: Path, media_type: str, lang: str, on_page_count: Callable[[int], None],
                  output_dir: Path | None = None) -> Recognition:
        def run() -> Generator[PageResult, None, Outputs]:
            try:
                on_page_count(2)
                for n in (1, 2):
                    self.read.append(n)
                    yield page(n)
                if output_dir is None:
                    return Outputs()
                hocr = output_dir / "fake.hocr"
                hocr.write_text("<html></html>")
                return Outputs(hocr=hocr)
            finally:
                self.finished = True

        return Recognition(run())


def test_a_fake_engine_is_an_ocr_engine(tmp_path: Path) -> None:
    """Anything with recognise() returning a Recognition serves ocr-process: pages first, then the outputs."""
    engine: OcrEngine = FakeEngine()
    counts: list[int] = []
    recognition = engine.recognise(tmp_path / "doc", "image/png", "eng", counts.append, tmp_path)
    assert [p.number for p in recognition] == [1, 2] and counts == [2]
    assert recognition.outputs == Outputs(hocr=tmp_path / "fake.hocr")


def test_outputs_are_known_only_after_the_last_page(tmp_path: Path) -> None:
    """Asking for the outputs while pages are still coming is a mistake, not an empty answer."""
    recognition = FakeEngine().recognise(tmp_path / "doc", "image/png", "eng", lambda n: None, tmp_path)
    next(recognition)
    with pytest.raises(RuntimeError):
        recognition.outputs  # noqa: B018


def test_pages_are_read_only_as_they_are_asked_for(tmp_path: Path) -> None:
    """The caller records each page before the next is taken: nothing piles up in between."""
    engine = FakeEngine()
    recognition = engine.recognise(tmp_path / "doc", "image/png", "eng", lambda n: None)
    assert engine.read == []
    assert next(recognition).number == 1 and engine.read == [1]


def test_stopping_early_ends_the_run(tmp_path: Path) -> None:
    """Leaving the `with` block part-way (a job taken over) closes the run, so its clean-up happens now."""
    engine = FakeEngine()
    with engine.recognise(tmp_path / "doc", "image/png", "eng", lambda n: None) as recognition:
        next(recognition)
    assert engine.finished and engine.read == [1]


def test_without_an_output_folder_nothing_is_written(tmp_path: Path) -> None:
    """Text only: the outputs are empty."""
    recognition = FakeEngine().recognise(tmp_path / "doc", "image/png", "eng", lambda n: None)
    assert len(list(recognition)) == 2
    assert recognition.outputs == Outputs()
