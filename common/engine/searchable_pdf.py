"""The searchable PDF assembled from the pages: text layers laid over the original PDF, or image pages' PDFs joined."""

from __future__ import annotations

import io
import shutil
from collections.abc import Mapping
from pathlib import Path

import pikepdf

from common.engine.run import run
from common.errors import AssemblyFailed, OcrError


def lay_text_over(original: Path, layers: Mapping[int, tuple[Path, int]], out: Path) -> Path:
    """The original PDF with each OCRed page's text-only PDF laid over it; other pages stay as they are.

    `layers` maps a page number to (tesseract's text-only page, degrees the page was turned clockwise
    to be read). A turned page gets the same /Rotate, so it shows upright and its text sits on it.
    Keeping the original page keeps its image untouched: no re-encoding, colour and size kept.
    """
    if not layers:
        shutil.copyfile(original, out)
        return out
    texts: list[pikepdf.Pdf] = []  # the overlays' sources must stay open until the save reads them
    try:
        with pikepdf.open(original) as pdf:
            for number, (layer, rotation) in sorted(layers.items()):
                page = pdf.pages[number - 1]
                if rotation:
                    page.obj.Rotate = (int(page.obj.get("/Rotate", 0)) + rotation) % 360
                # A text layer is a few kilobytes; read whole, it needs no open file until the save.
                texts.append(pikepdf.open(io.BytesIO(layer.read_bytes())))
                # Fitted to the crop box: the region pdftoppm renders and a whole-page JPEG covers.
                page.add_overlay(texts[-1].pages[0], pikepdf.Rectangle(page.cropbox))
            pdf.save(out)
    except pikepdf.PdfError as e:
        raise AssemblyFailed("the text layers could not be laid over the PDF", detail=str(e)) from e
    finally:
        for text in texts:
            text.close()
    return out


def join_pages(pages: list[Path], out: Path, timeout: float) -> Path:
    """An image's page PDFs (image and invisible text each) as one document, in order.

    pdfunite copies each page's objects as they are (the image is not encoded again), in a child
    process: the worker's memory does not grow with the page count.
    """
    try:
        run(["pdfunite", *map(str, pages), str(out)], timeout=timeout)
    except OcrError as e:
        # Every page was read: what failed is putting them together, whether it hung, failed or never started.
        raise AssemblyFailed(f"the page PDFs could not be joined ({e.message})", detail=e.detail) from e
    return out
