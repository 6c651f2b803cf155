"""Fax TIFFs (CCITT group 3/4, 1-bit) are pages like any other: prepared for tesseract and read."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from common.engine.page.images import image_rasters
from common.engine.ocr import OcrLimits, TesseractEngine
from tests.support import render_page

LIMITS = OcrLimits(max_pages=10, max_page_pixels=50_000_000, page_timeout=60, dpi=300, workers=2, clean_up=False)


def fax_tiff(path: Path, compression: str, pages: list[list[str]]) -> Path:
    """A multi-page 1-bit TIFF as a fax machine or a document scanner in fax mode writes it."""
    frames = [render_page(lines).point(lambda v: 255 if v > 128 else 0).convert("1") for lines in pages]
    frames[0].save(path, format="TIFF", compression=compression, save_all=True, append_images=frames[1:],
                   dpi=(200, 200))
    return path


@pytest.mark.parametrize("compression", ["group4", "group3"])
def test_fax_frames_are_written_out_for_tesseract(tmp_path: Path, compression: str) -> None:
    """Each frame is written uncompressed: group3/group4 would not encode once the frame is gray."""
    scan = fax_tiff(tmp_path / "fax.tif", compression, [["FAX page one"], ["FAX page two"]])
    with Image.open(scan) as check:
        assert check.info["compression"] == compression and check.mode == "1"
    work = tmp_path / "work"
    work.mkdir()
    rasters = image_rasters(scan, work, LIMITS)
    assert [r.number for r in rasters] == [1, 2] and all(r.dpi == 200 for r in rasters)
    with Image.open(rasters[0].path) as frame:
        assert frame.info["compression"] == "raw"


def test_a_group4_fax_is_read(tmp_path: Path) -> None:
    """A G4 fax reads like any scan: its words come back with good confidence."""
    scan = fax_tiff(tmp_path / "fax.tif", "group4", [["TELEFAX order 5521 received"]])
    with TesseractEngine(LIMITS).recognise(scan, "image/tiff", "eng", lambda n: None) as recognition:
        pages = list(recognition)
    assert len(pages) == 1
    assert "telefax order 5521 received" in " ".join(pages[0].text.split()).lower()
    assert pages[0].confidence is not None and pages[0].confidence > 50
