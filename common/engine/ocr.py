"""OCR engine: tesseract over images (Pillow) and PDF pages (pdf2image, poppler, pikepdf); the only module that runs them."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pdf2image
from pdf2image.exceptions import PDFInfoNotInstalledError, PDFPageCountError, PDFSyntaxError
from PIL import Image, ImageFilter, ImageOps, ImageSequence, UnidentifiedImageError

from common.engine import hocr
from common.engine.artifacts import SEARCHABLE_PDF_NAME
from common.engine.pdf import PageJpeg, PdfDocument, lay_text_over
from common.engine.run import run
from common.errors import (
    CorruptDocument,
    ImageTooLarge,
    OcrError,
    OcrTimeout,
    PdfEncrypted,
    TooManyPages,
)
from common.models import PageResult


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
    clean_up: bool = False  # median filter + autocontrast before OCR (OCR_CLEAN_UP)


class OcrEngine(Protocol):
    """What ocr-process needs from an engine; a test can pass a whole fake one."""

    def recognise(
        self, path: Path, media_type: str, lang: str, on_page_count: Callable[[int], None],
        artifacts: Path | None = None,
    ) -> Iterator[PageResult]: ...


_EXIF_ORIENTATION = 0x0112

# One OpenMP thread per tesseract: pages already run in parallel, extra threads only contend (5x slower here).
_TESSERACT_ENV = dict(os.environ, OMP_THREAD_LIMIT="1")


def _cleaned_up(image: Image.Image) -> Image.Image:
    """Speckles out (3x3 median), contrast stretched: for poor scans (OCR_CLEAN_UP)."""
    return ImageOps.autocontrast(image.filter(ImageFilter.MedianFilter(3)))


def _rewritten(image_path: Path, tag: str, dpi: int, change: Callable[[Image.Image], Image.Image]) -> Path:
    """The page raster changed, as an uncompressed TIFF beside it (named with `tag`); the old one is removed."""
    out = image_path.with_name(f"{image_path.stem}-{tag}.tif")
    with Image.open(image_path) as im:
        change(im).save(out, format="TIFF", dpi=(dpi, dpi))
    image_path.unlink()
    return out


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
            if media_type == "application/pdf":
                yield from self._recognise_pdf(path, Path(tmp), lang, on_page_count, artifacts)
                return
            frames = self._image_frames(path, Path(tmp))
            on_page_count(len(frames))

            def page(n: int) -> PageResult:
                frame, dpi = frames[n - 1]
                return self._ocr_page(n, frame, lang, time.monotonic(), artifacts, dpi)

            yield from self._run_pages(len(frames), page)

    def _recognise_pdf(
        self, path: Path, workdir: Path, lang: str, on_page_count: Callable[[int], None], artifacts: Path | None
    ) -> Iterator[PageResult]:
        """Text-layer pages read from the layer, one-JPEG pages from their JPEG, the rest rendered.

        The searchable PDF is the original with each OCRed page's invisible text laid over it.
        """
        count = self._pdf_page_count(path)
        on_page_count(count)
        layers_started = time.monotonic()
        layers = self._text_layers(path, count)
        # One poppler pass served every text-layer page: each gets its share of the time.
        layer_ms = int((time.monotonic() - layers_started) * 1000 / max(1, len(layers)))
        with PdfDocument(path) as pdf:
            scanned = [n for n in range(1, count + 1) if n not in layers]
            jpegs = {} if self.limits.clean_up else self._readable_jpegs(pdf, scanned)
            for n in (n for n in scanned if n not in jpegs):
                # A page's size, not its file size, decides the raster: a huge page is a decompression bomb.
                pixels = pdf.rendered_pixels(n, self.limits.dpi)
                if pixels > self.limits.max_page_pixels:
                    raise ImageTooLarge(
                        f"page {n} would render to {pixels} pixels at {self.limits.dpi} DPI; the limit is "
                        f"{self.limits.max_page_pixels} (MAX_PAGE_PIXELS)"
                    )

            def page(n: int) -> PageResult:
                started = time.monotonic()
                if n in layers:
                    return PageResult(number=n, text=layers[n], confidence=None, method="text_layer",
                                      width=None, height=None, duration_ms=layer_ms)
                if n in jpegs:
                    image, dpi = workdir / f"page-{n:05d}.jpg", jpegs[n].dpi
                    pdf.write_jpeg(jpegs[n], image)
                else:
                    image, dpi = self._render_pdf_page(path, n, workdir), self.limits.dpi
                return self._ocr_page(n, image, lang, started, artifacts, dpi, text_only=True)

            turned: dict[int, int] = {}
            for result in self._run_pages(count, page):
                if result.method == "ocr":
                    turned[result.number] = result.rotation
                yield result
        if artifacts:
            text_layers = {n: (artifacts / f"layer-{n:05d}.pdf", rotation) for n, rotation in turned.items()}
            lay_text_over(path, text_layers, artifacts / SEARCHABLE_PDF_NAME)
            for layer, _ in text_layers.values():
                layer.unlink()

    def _readable_jpegs(self, pdf: PdfDocument, numbers: list[int]) -> dict[int, PageJpeg]:
        """Whole-page JPEGs worth reading as stored: within the pixel limit and not finer than OCR_DPI
        (a 600 DPI scan is quicker to read rendered at 300 than as stored, four times the pixels)."""
        return {n: jpeg for n, jpeg in pdf.whole_page_jpegs(numbers).items()
                if jpeg.pixels <= self.limits.max_page_pixels and jpeg.dpi <= self.limits.dpi * 1.1}

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

    def _text_layers(self, path: Path, count: int) -> dict[int, str]:
        """Pages with a usable text layer (born-digital) and their text, from one poppler pass over the PDF.

        A page needs MIN_TEXT_LAYER_CHARS letters or digits to count; every other page is OCRed.
        """
        out = run(["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"],
                  timeout=self.limits.page_timeout + count * 0.5)
        # pdftotext ends every page with a form feed, so page n is the n-th part.
        parts = out.decode("utf-8", errors="replace").split("\f")
        return {n: parts[n - 1].strip() for n in range(1, min(count, len(parts)) + 1)
                if sum(ch.isalnum() for ch in parts[n - 1]) >= MIN_TEXT_LAYER_CHARS}

    def _render_pdf_page(self, path: Path, number: int, workdir: Path) -> Path:
        """One page at a time: memory stays flat however long the PDF is.

        Uncompressed TIFF: no encoding cost (PNG costs 12x more), and tesseract reads it faster than PPM.
        """
        try:
            paths = pdf2image.convert_from_path(
                str(path),
                dpi=self.limits.dpi,
                first_page=number,
                last_page=number,
                fmt="tiff",
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
        """Every frame of a TIFF, the first of a GIF/WebP animation; EXIF rotation applied.

        An upright gray or colour JPEG is given to tesseract as uploaded: it reads JPEG directly and
        embeds it in the page's PDF as it is, so the searchable PDF keeps the photo's own bytes.
        """
        try:
            with Image.open(path) as image:
                animated_gif = image.format in ("GIF", "WEBP")
                as_uploaded = (image.format == "JPEG" and image.mode in ("L", "RGB")
                               and image.getexif().get(_EXIF_ORIENTATION, 1) == 1)
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
                    # Scanners record their resolution; a bare image is taken to be a 300 DPI scan, and so
                    # is one claiming under 100 (72 and 96 are what cameras and editors write by default).
                    dpi = frame.info.get("dpi", (0, 0))[0] or image.info.get("dpi", (0, 0))[0]
                    dpi = int(round(float(dpi))) if dpi and float(dpi) >= 100 else 300
                    if as_uploaded:
                        frame.load()  # decoded once all the same: a truncated file is refused here
                        out = workdir / "frame-00001.jpg"
                        shutil.copyfile(path, out)
                    else:
                        upright = ImageOps.exif_transpose(frame.copy())
                        mode = "L" if upright.mode in ("1", "L", "LA", "I;16") else "RGB"
                        out = workdir / f"frame-{index + 1:05d}.tif"
                        upright.convert(mode).save(out, format="TIFF", dpi=(dpi, dpi))
                    frames.append((out, dpi))
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
        self, number: int, image_path: Path, lang: str, started: float, artifacts: Path | None, dpi: int,
        text_only: bool = False,
    ) -> PageResult:
        """OCR a page raster; a page read with low confidence is checked for orientation and read upright.

        Orientation detection costs about a third of a page's OCR, so only pages that read badly pay it.
        """
        try:
            if self.limits.clean_up:
                image_path = _rewritten(image_path, "clean", dpi, _cleaned_up)
            read = self._tesseract(number, image_path, lang, artifacts, text_only, dpi)
            rotation = 0
            if read.confidence is None or read.confidence < LOW_CONFIDENCE:
                rotation = self._orientation(number, image_path)
                if rotation:
                    # OSD's "Rotate" is the clockwise turn that makes the page upright; PIL turns anticlockwise.
                    image_path = _rewritten(image_path, "upright", dpi,
                                            lambda im: im.rotate(-rotation, expand=True))
                    read = self._tesseract(number, image_path, lang, artifacts, text_only, dpi)
            with Image.open(image_path) as im:
                width, height = im.size
        finally:
            image_path.unlink(missing_ok=True)
        return PageResult(
            number=number,
            text=read.text,
            confidence=read.confidence,
            method="ocr",
            width=width,
            height=height,
            duration_ms=int((time.monotonic() - started) * 1000),
            rotation=rotation,
            words=read.words,
        )

    def _tesseract(
        self, number: int, image_path: Path, lang: str, artifacts: Path | None, text_only: bool, dpi: int
    ) -> hocr.HocrPage:
        """One tesseract run: hOCR (words, boxes, confidences) and, when asked, the page's PDF.

        `text_only`: the PDF holds only the invisible text (layer-NNNNN.pdf), to be laid over the
        original page; otherwise it carries the page image too (page-NNNNN.pdf), and `dpi` gives that
        page the paper's size. A text layer is scaled onto its page, so there tesseract takes the
        resolution the raster records, or estimates it as for any image given to the CLI.
        """
        base = image_path.with_suffix("")
        if text_only:
            options = ["-c", "textonly_pdf=1"] if artifacts else []
        else:
            options = ["--dpi", str(dpi)]
        renderers = ["hocr"] + (["pdf"] if artifacts else [])
        try:
            run(["tesseract", str(image_path), str(base), "-l", lang, *options, *renderers],
                timeout=self.limits.page_timeout, env=_TESSERACT_ENV)
            page = hocr.parse(base.with_suffix(".hocr").read_bytes())
            if artifacts:
                pdf_name = f"layer-{number:05d}.pdf" if text_only else f"page-{number:05d}.pdf"
                base.with_suffix(".pdf").replace(artifacts / pdf_name)
                base.with_suffix(".hocr").replace(artifacts / f"page-{number:05d}.hocr")
        except OcrTimeout as e:
            raise OcrTimeout(
                f"page {number} took longer than {self.limits.page_timeout:g} s (OCR_PAGE_TIMEOUT)"
            ) from e
        except OcrError as e:
            raise OcrError(f"tesseract failed on page {number}: {e.message}") from e
        finally:
            base.with_suffix(".hocr").unlink(missing_ok=True)
        return page

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
