"""What the tesseract engine writes for a whole document, says it wrote, and how assembling it fails."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pikepdf
import pytest

from common.engine import scratch
from common.engine.ocr import OcrLimits, TesseractEngine
from common.engine.page.straighten import Straightening
from common.engine.pdf.searchable import TextLayer, join_pages, lay_text_over
from common.errors import AssemblyFailed
from tests.support import render_page, scanned_pdf

LIMITS = OcrLimits(max_pages=5, max_page_pixels=10_000_000, page_timeout=60, dpi=150, workers=2)


def two_page_tiff(path: Path) -> Path:
    pages = [render_page(["FIRST page of two"]), render_page(["SECOND page of two"])]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    return path


def test_image_outputs_are_a_joined_pdf_and_one_hocr_in_page_order(tmp_path: Path) -> None:
    """A two-frame TIFF gives a two-page searchable PDF and one hOCR document, pages in order, and nothing else."""
    out = tmp_path / "out"
    out.mkdir()
    recognition = TesseractEngine(LIMITS).recognise(two_page_tiff(tmp_path / "scan.tif"), "image/tiff", "eng",
                                                    lambda n: None, out)
    assert [p.number for p in recognition] == [1, 2]
    outputs = recognition.outputs
    assert outputs.searchable_pdf is not None and outputs.hocr is not None
    assert sorted(out.iterdir()) == sorted([outputs.searchable_pdf, outputs.hocr])
    with pikepdf.open(outputs.searchable_pdf) as pdf:
        assert len(pdf.pages) == 2
    text = subprocess.run(["pdftotext", str(outputs.searchable_pdf), "-"], check=True, capture_output=True,
                          text=True).stdout.lower()
    assert text.index("first page") < text.index("second page")
    hocr = outputs.hocr.read_bytes()
    assert hocr.count(b"class='ocr_page'") == 2 and hocr.index(b"FIRST") < hocr.index(b"SECOND")


def test_without_an_output_folder_no_outputs_are_made(tmp_path: Path) -> None:
    """Text only (the benchmarks, re-reads): the run says it wrote nothing."""
    recognition = TesseractEngine(LIMITS).recognise(two_page_tiff(tmp_path / "scan.tif"), "image/tiff", "eng",
                                                    lambda n: None)
    assert len(list(recognition)) == 2
    assert recognition.outputs.searchable_pdf is None and recognition.outputs.hocr is None


def test_a_run_stopped_early_leaves_no_work_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job taken over mid-document stops reading: its rasters and page files go with it."""
    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    scan = two_page_tiff(tmp_path / "scan.tif")
    out = tmp_path / "out"
    out.mkdir()
    mine = scratch.worker_dir()  # under `work`: this process's folder, its lock alone in it
    with TesseractEngine(LIMITS).recognise(scan, "image/tiff", "eng", lambda n: None, out) as recognition:
        next(recognition)
        assert [p.name for p in mine.iterdir() if p.name.startswith("ocr-pages-")]  # the run's folder, while it reads
    assert [p.name for p in mine.iterdir()] == [".lock"] and list(out.iterdir()) == []
    assert list(work.iterdir()) == [mine.parent]


def test_page_pdfs_that_cannot_be_joined_fail_with_assembly_failed(tmp_path: Path) -> None:
    """pdfunite refusing its input is the assembly's failure, with its own code: the pages were read."""
    page = tmp_path / "page.pdf"
    page.write_bytes(scanned_pdf([["fine"]]))
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nnot a page\n")
    with pytest.raises(AssemblyFailed) as info:
        join_pages([page, broken], tmp_path / "joined.pdf", timeout=30)
    assert info.value.code == "assembly_failed" and "pdfunite" in info.value.message


def test_a_text_layer_that_cannot_be_read_fails_with_assembly_failed(tmp_path: Path) -> None:
    """A text layer pikepdf cannot open fails the assembly with its code, not as an internal error."""
    original = tmp_path / "scan.pdf"
    original.write_bytes(scanned_pdf([["fine"]]))
    layer = tmp_path / "layer.pdf"
    layer.write_bytes(b"%PDF-1.4\nnot a layer\n")
    with pytest.raises(AssemblyFailed):
        lay_text_over(original, {1: TextLayer(layer, Straightening.none((100, 100)))}, tmp_path / "searchable.pdf")
