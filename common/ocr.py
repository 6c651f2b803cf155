"""OCR engine: tesseract over images (Pillow) and PDF pages (pdf2image, poppler); the only module that runs them."""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import pdf2image
import pytesseract
from pdf2image.exceptions import PDFInfoNotInstalledError, PDFPageCountError, PDFSyntaxError
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from common.errors import (
    CorruptDocument,
    ImageTooLarge,
    InvalidLanguage,
    OcrError,
    OcrTimeout,
    PdfEncrypted,
    TooManyPages,
)
from common.process import run


# The merged result's file name in an artifacts folder; an engine may write it whole itself.
SEARCHABLE_PDF_NAME = "searchable.pdf"

# A page with fewer letters and digits in its text layer than this is treated as scanned: scanners
# often add a few stray characters (page numbers, OCR-less stamps) to image-only pages.
MIN_TEXT_LAYER_CHARS = 20


# Below this mean word confidence a page may be sideways or upside down: worth an orientation check.
LOW_CONFIDENCE = 50.0
# tesseract's own OSD confidence; under this its answer is a guess.
MIN_OSD_CONFIDENCE = 2.0


@dataclass(frozen=True)
class OcrLimits:
    max_pages: int
    max_page_pixels: int
    page_timeout: float
    dpi: int
    workers: int


@dataclass(frozen=True)
class PageResult:
    number: int
    text: str
    confidence: float | None
    method: str  # "ocr" or "text_layer"
    width: int | None  # pixels of the OCRed raster; None for text taken from the PDF's layer
    height: int | None
    duration_ms: int
    rotation: int = 0  # degrees the page was turned clockwise before OCR


class OcrEngine(Protocol):
    """What ocr-process needs from an engine; a test can pass a whole fake one."""

    def recognise(
        self, path: Path, media_type: str, lang: str, on_page_count: Callable[[int], None],
        artifacts: Path | None = None,
    ) -> Iterator[PageResult]: ...


@lru_cache(maxsize=1)
def installed_languages() -> frozenset[str]:
    """Traineddata tesseract can load here; 'osd' is orientation data, not a language to read."""
    return frozenset(lang for lang in pytesseract.get_languages(config="") if lang != "osd")


def validate_lang(lang: str) -> str:
    """`eng` or `deu+eng`: each part must be installed, else a 400 that lists what is."""
    parts = [p for p in lang.split("+") if p]
    available = installed_languages()
    unknown = [p for p in parts if p not in available]
    if not parts or unknown:
        raise InvalidLanguage(
            f"language {lang!r} is not installed; available: {', '.join(sorted(available))}"
        )
    return "+".join(parts)


def _text_and_confidence(data: dict[str, list]) -> tuple[str, float | None]:
    """Rebuild reading order from tesseract's TSV rows: words by line, lines by paragraph."""
    lines: dict[tuple[int, int, int], list[str]] = {}
    confidences: list[float] = []
    for i, word in enumerate(data["text"]):
        word = (word or "").strip()
        if not word:
            continue
        key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
        lines.setdefault(key, []).append(word)
        conf = float(data["conf"][i])
        if conf >= 0:
            confidences.append(conf)
    out: list[str] = []
    previous_par: tuple[int, int] | None = None
    for (block, par, _line), words in lines.items():
        if previous_par is not None and (block, par) != previous_par:
            out.append("")
        out.append(" ".join(words))
        previous_par = (block, par)
    confidence = round(sum(confidences) / len(confidences), 2) if confidences else None
    return "\n".join(out), confidence


# One OpenMP thread per tesseract: pages already run in parallel, extra threads only contend (5x slower here).
_TESSERACT_ENV = dict(os.environ, OMP_THREAD_LIMIT="1")


def _parse_tsv(raw: bytes) -> dict[str, list]:
    """tesseract's TSV (header row, then one row per layout element) as columns."""
    rows = raw.decode("utf-8", errors="replace").splitlines()
    if not rows:
        return {k: [] for k in ("text", "block_num", "par_num", "line_num", "conf")}
    header = rows[0].split("\t")
    columns: dict[str, list] = {name: [] for name in header}
    for row in rows[1:]:
        cells = row.split("\t")
        if len(cells) < len(header):
            cells += [""] * (len(header) - len(cells))
        for name, cell in zip(header, cells):
            columns[name].append(cell if name == "text" else float(cell or -1))
    return columns


class TesseractEngine:
    """Pages run in parallel, one tesseract thread each: OpenMP threads only contend on shared cores.

    With `artifacts`, each page's searchable PDF and hOCR are written there as page-NNNNN.pdf/.hocr.
    """

    def __init__(self, limits: OcrLimits) -> None:
        self.limits = limits
        # Pillow refuses decompression bombs itself above this, before decoding pixels.
        Image.MAX_IMAGE_PIXELS = limits.max_page_pixels

    def recognise(
        self, path: Path, media_type: str, lang: str, on_page_count: Callable[[int], None],
        artifacts: Path | None = None,
    ) -> Iterator[PageResult]:
        with tempfile.TemporaryDirectory(prefix="ocr-pages-") as tmp:
            workdir = Path(tmp)
            if media_type == "application/pdf":
                count = self._pdf_page_count(path)
                on_page_count(count)
                layers_started = time.monotonic()
                layers = self._text_layers(path, count, artifacts)
                # One poppler pass served every text-layer page: each gets its share of the time.
                layer_ms = int((time.monotonic() - layers_started) * 1000 / max(1, len(layers)))

                def page(n: int) -> PageResult:
                    started = time.monotonic()
                    if n in layers:
                        return PageResult(number=n, text=layers[n], confidence=None, method="text_layer",
                                          width=None, height=None, duration_ms=layer_ms)
                    return self._ocr_page(n, self._render_pdf_page(path, n, workdir), lang, started, artifacts)
            else:
                frames = self._image_frames(path, workdir)
                count = len(frames)
                on_page_count(count)

                def page(n: int) -> PageResult:
                    frame, dpi = frames[n - 1]
                    return self._ocr_page(n, frame, lang, time.monotonic(), artifacts, dpi)

            yield from self._run_pages(count, page)

    def _run_pages(self, count: int, page: Callable[[int], PageResult]) -> Iterator[PageResult]:
        workers = max(1, min(self.limits.workers, count))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocr-page") as pool:
            # map keeps page order while pages run in parallel.
            yield from pool.map(page, range(1, count + 1))

    def _pdf_page_count(self, path: Path) -> int:
        try:
            info = pdf2image.pdfinfo_from_path(str(path), timeout=30)
        except PDFPageCountError as e:
            if "password" in str(e).lower() or "encrypt" in str(e).lower():
                raise PdfEncrypted("the PDF is encrypted and needs a password") from e
            raise CorruptDocument(f"the PDF cannot be read: {e}") from e
        except (PDFSyntaxError, PDFInfoNotInstalledError, ValueError) as e:
            raise CorruptDocument(f"the PDF cannot be read: {e}") from e
        count = int(info.get("Pages", 0))
        if count < 1:
            raise CorruptDocument("the PDF has no pages")
        if count > self.limits.max_pages:
            raise TooManyPages(f"the PDF has {count} pages; the limit is {self.limits.max_pages} (MAX_PAGES)")
        return count

    def _text_layers(self, path: Path, count: int, artifacts: Path | None) -> dict[int, str]:
        """Pages with a usable text layer (born-digital) and their text, from one poppler pass over the PDF.

        A page needs MIN_TEXT_LAYER_CHARS letters or digits to count; every other page is OCRed.
        """
        out = run(["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"],
                  timeout=self.limits.page_timeout + count * 0.5)
        # pdftotext ends every page with a form feed, so page n is the n-th part.
        parts = out.decode("utf-8", errors="replace").split("\f")
        layers = {n: parts[n - 1].strip() for n in range(1, min(count, len(parts)) + 1)
                  if sum(ch.isalnum() for ch in parts[n - 1]) >= MIN_TEXT_LAYER_CHARS}
        if artifacts and len(layers) == count:
            # A wholly born-digital PDF already is the searchable PDF: no need to take it apart.
            shutil.copyfile(path, artifacts / SEARCHABLE_PDF_NAME)
        elif layers and artifacts:
            # Those pages already are searchable: they go into the output PDF as they are.
            run(["pdfseparate", str(path), str(artifacts / "layer-%d.pdf")],
                timeout=self.limits.page_timeout + count * 0.5)
            for n in range(1, count + 1):
                single = artifacts / f"layer-{n}.pdf"
                if n in layers:
                    single.replace(artifacts / f"page-{n:05d}.pdf")
                else:
                    single.unlink(missing_ok=True)
        return layers

    def _render_pdf_page(self, path: Path, number: int, workdir: Path) -> Path:
        """One page at a time: memory stays flat however long the PDF is. PPM skips PNG encoding."""
        try:
            paths = pdf2image.convert_from_path(
                str(path),
                dpi=self.limits.dpi,
                first_page=number,
                last_page=number,
                fmt="ppm",
                grayscale=True,  # tesseract binarises anyway; a gray raster is a third of the bytes
                output_folder=str(workdir),
                output_file=f"page-{number:05d}",
                paths_only=True,
                timeout=int(self.limits.page_timeout),
            )
        except (PDFPageCountError, PDFSyntaxError) as e:
            raise CorruptDocument(f"page {number} of the PDF cannot be rendered: {e}") from e
        except TimeoutError as e:
            raise OcrTimeout(f"rendering page {number} took longer than {self.limits.page_timeout:g} s") from e
        if not paths:
            raise CorruptDocument(f"page {number} of the PDF rendered to nothing")
        return Path(str(paths[0]))

    def _image_frames(self, path: Path, workdir: Path) -> list[tuple[Path, int]]:
        """Every frame of a TIFF, the first of a GIF/WebP animation; EXIF rotation applied."""
        try:
            with Image.open(path) as image:
                animated_gif = image.format in ("GIF", "WEBP")
                frames: list[tuple[Path, int]] = []
                for index, frame in enumerate(ImageSequence.Iterator(image)):
                    if index >= self.limits.max_pages:
                        raise TooManyPages(
                            f"the image has more than {self.limits.max_pages} frames (MAX_PAGES)"
                        )
                    pixels = frame.width * frame.height
                    if pixels > self.limits.max_page_pixels:
                        raise ImageTooLarge(
                            f"page {index + 1} has {pixels} pixels; the limit is "
                            f"{self.limits.max_page_pixels} (MAX_PAGE_PIXELS)"
                        )
                    upright = ImageOps.exif_transpose(frame.copy())
                    mode = "L" if upright.mode in ("1", "L", "LA", "I;16") else "RGB"
                    out = workdir / f"frame-{index + 1:05d}.ppm"
                    upright.convert(mode).save(out, format="PPM")
                    # Scanners record their resolution; a bare image is taken to be a 300 DPI scan.
                    dpi = frame.info.get("dpi", (0, 0))[0] or image.info.get("dpi", (0, 0))[0]
                    frames.append((out, int(round(float(dpi))) if dpi and float(dpi) >= 70 else 300))
                    if animated_gif:
                        break
        except Image.DecompressionBombError as e:
            raise ImageTooLarge(f"the image exceeds {self.limits.max_page_pixels} pixels (MAX_PAGE_PIXELS)") from e
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise CorruptDocument(f"the image cannot be decoded: {e}") from e
        if not frames:
            raise CorruptDocument("the image has no frames")
        return frames

    def _ocr_page(
        self, number: int, image_path: Path, lang: str, started: float, artifacts: Path | None, dpi: int = 0
    ) -> PageResult:
        """OCR a page raster; a page read with low confidence is checked for orientation and read upright.

        Orientation detection costs about a third of a page's OCR, so only pages that read badly pay it.
        """
        dpi = dpi or self.limits.dpi
        try:
            text, confidence = self._tesseract(number, image_path, lang, artifacts, dpi)
            rotation = 0
            if confidence is None or confidence < LOW_CONFIDENCE:
                rotation = self._orientation(number, image_path)
                if rotation:
                    with Image.open(image_path) as im:
                        # OSD's "Rotate" is the clockwise turn that makes the page upright; PIL turns anticlockwise.
                        im.rotate(-rotation, expand=True).save(image_path, format="PPM")
                    text, confidence = self._tesseract(number, image_path, lang, artifacts, dpi)
            with Image.open(image_path) as im:
                width, height = im.size
        finally:
            image_path.unlink(missing_ok=True)
        return PageResult(
            number=number,
            text=text,
            confidence=confidence,
            method="ocr",
            width=width,
            height=height,
            duration_ms=int((time.monotonic() - started) * 1000),
            rotation=rotation,
        )

    def _tesseract(
        self, number: int, image_path: Path, lang: str, artifacts: Path | None, dpi: int
    ) -> tuple[str, float | None]:
        """One tesseract run: the words (TSV) and, when asked, the page's searchable PDF and hOCR."""
        base = image_path.with_suffix("")
        renderers = ["tsv"] + (["pdf", "hocr"] if artifacts else [])
        try:
            # The raster's real resolution, so the searchable PDF page has the paper's size.
            run(["tesseract", str(image_path), str(base), "-l", lang, "--dpi", str(dpi), *renderers],
                timeout=self.limits.page_timeout, env=_TESSERACT_ENV)
            tsv = base.with_suffix(".tsv").read_bytes()
            if artifacts:
                base.with_suffix(".pdf").replace(artifacts / f"page-{number:05d}.pdf")
                base.with_suffix(".hocr").replace(artifacts / f"page-{number:05d}.hocr")
        except OcrTimeout as e:
            raise OcrTimeout(
                f"page {number} took longer than {self.limits.page_timeout:g} s (OCR_PAGE_TIMEOUT)"
            ) from e
        except OcrError as e:
            raise OcrError(f"tesseract failed on page {number}: {e.message}") from e
        finally:
            base.with_suffix(".tsv").unlink(missing_ok=True)
        return _text_and_confidence(_parse_tsv(tsv))

    def _orientation(self, number: int, image_path: Path) -> int:
        """Degrees (0, 90, 180, 270) to turn the page clockwise, per tesseract's OSD; 0 when unsure."""
        try:
            out = run(["tesseract", str(image_path), "-", "--psm", "0"], timeout=self.limits.page_timeout,
                      env=_TESSERACT_ENV).decode(errors="replace")
        except OcrError:
            return 0  # too few characters to tell: keep the page as it is
        rotate = re.search(r"^Rotate:\s*(\d+)", out, re.M)
        confident = re.search(r"^Orientation confidence:\s*([\d.]+)", out, re.M)
        if not rotate or not confident or float(confident.group(1)) < MIN_OSD_CONFIDENCE:
            return 0
        return int(rotate.group(1)) % 360
