"""Lossless scans: the raw tesseract CLI on page rasters (PNG, PNM) against the engine on a PDF storing the
same rasters losslessly (Flate), read as stored; and the same PDF with every page rendered, as before.

Run from the repository root: .venv/bin/python -m bench.lossless_bench [--pages 8] [--rounds 2]

Needs no services: it drives the engine directly. The rounds alternate between the sides, so other work
on the machine weighs on each alike; every round is printed as measured, then the best of each side.
Besides wall time, each side's CPU time (this process and the programs it ran) is printed: on a shared
machine the wall time swings with others' load, the CPU a page costs much less.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pikepdf
from PIL import Image

from bench.pages import scanned_page
from common.engine import pdf_pages
from common.engine.ocr import OcrLimits, TesseractEngine
from common.engine.pdf import PdfDocument
from common.logging import setup

DPI = 300


def lossless_pdf(pages: list[Image.Image], out: Path) -> Path:
    """Each page one gray Flate image at 300 DPI covering it, as a scanner storing losslessly writes it."""
    pdf = pikepdf.new()
    for page in pages:
        points = (page.width * 72 / DPI, page.height * 72 / DPI)
        pdf.add_blank_page(page_size=points)
        image = pikepdf.Stream(pdf, zlib.compress(page.tobytes()))
        image.Type, image.Subtype, image.Width, image.Height = (pikepdf.Name.XObject, pikepdf.Name.Image,
                                                                page.width, page.height)
        image.ColorSpace, image.BitsPerComponent, image.Filter = (pikepdf.Name.DeviceGray, 8,
                                                                  pikepdf.Name.FlateDecode)
        added = pdf.pages[-1]
        added.obj.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
        added.obj.Contents = pdf.make_stream(b"q %.4f 0 0 %.4f 0 0 cm /Im0 Do Q" % points)
    pdf.save(out)
    return out


def raw_tesseract(paths: list[Path], workers: int, hocr: bool = False) -> float:
    """Seconds for `tesseract page stdout --dpi 300` (plain text; with `hocr`, the hOCR the engine asks
    for, into a file beside the page) over all pages, `workers` at a time, one thread each."""
    env = dict(os.environ, OMP_THREAD_LIMIT="1")

    def one(path: Path) -> None:
        output = [str(path.with_suffix("")), "hocr"] if hocr else ["stdout"]
        subprocess.run(["tesseract", str(path), output[0], "-l", "eng", "--dpi", str(DPI), *output[1:]], env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, paths))
    return time.perf_counter() - started


def engine(path: Path, workers: int, output_dir: Path | None = None) -> float:
    """Seconds for the engine to read every page of the PDF (and, with `output_dir`, write the searchable
    PDF and hOCR), from opening the PDF to the last page's result."""
    limits = OcrLimits(max_pages=1000, max_page_pixels=10**8, page_timeout=300, dpi=DPI, workers=workers)
    started = time.perf_counter()
    with TesseractEngine(limits).recognise(path, "application/pdf", "eng", lambda n: None, output_dir) as pages:
        if any(page.method != "ocr" for page in pages):
            raise SystemExit("a page was not OCRed")
    return time.perf_counter() - started


def cpu_seconds() -> float:
    """CPU used so far by this process (the engine's own work) and the programs it waited for (tesseract,
    pdftoppm, pdftotext)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def rendered(run: Callable[[], float]) -> float:
    """`run` with the stored-image route turned off: every page rendered by pdftoppm, as before it existed."""
    kept = pdf_pages.readable_images
    pdf_pages.readable_images = lambda pdf, numbers, limits: {}  # type: ignore[assignment]
    try:
        return run()
    finally:
        pdf_pages.readable_images = kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    setup("lossless-bench", "WARNING")
    workers = os.cpu_count() or 1
    n = args.pages

    with tempfile.TemporaryDirectory(prefix="lossless-bench-") as tmp:
        folder = Path(tmp)
        pages = [scanned_page(i) for i in range(n)]
        pngs, pnms = [], []
        for i, page in enumerate(pages):
            page.save(folder / f"page-{i:03d}.png", dpi=(DPI, DPI))
            page.save(folder / f"page-{i:03d}.pgm")
            pngs.append(folder / f"page-{i:03d}.png")
            pnms.append(folder / f"page-{i:03d}.pgm")
        pdf_path = lossless_pdf(pages, folder / "lossless.pdf")
        with PdfDocument(pdf_path) as pdf:
            planned = pdf_pages.plan_pages(pdf_path, pdf, n, OcrLimits(
                max_pages=1000, max_page_pixels=10**8, page_timeout=300, dpi=DPI, workers=workers))
            routes = {planned.route(i) for i in range(1, n + 1)}
        print(f"{n} gray A4 pages at {DPI} DPI ({pages[0].width}x{pages[0].height}), {workers} parallel pages, "
              f"OMP_THREAD_LIMIT=1; PDF {pdf_path.stat().st_size / 1e6:.1f} MB, planned route(s): "
              f"{', '.join(sorted(routes))}")

        out = folder / "out"
        out.mkdir()
        sides: dict[str, Callable[[], float]] = {
            "raw tesseract CLI, PNG rasters": lambda: raw_tesseract(pngs, workers),
            "raw tesseract CLI, PNM rasters": lambda: raw_tesseract(pnms, workers),
            "raw tesseract CLI, PNG rasters, hOCR": lambda: raw_tesseract(pngs, workers, hocr=True),
            "engine, Flate PDF, text only": lambda: engine(pdf_path, workers),
            "engine, Flate PDF, + searchable PDF, hOCR": lambda: engine(pdf_path, workers, out),
            "engine, Flate PDF, rendered (old route)": lambda: rendered(lambda: engine(pdf_path, workers)),
        }
        engine(pdf_path, workers)  # warm-up: language data into the page cache, imports done
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        for r in range(args.rounds):
            for name, side in sides.items():
                cpu_before = cpu_seconds()
                seconds = side()
                cpu = cpu_seconds() - cpu_before
                times[name].append((seconds, cpu))
                print(f"round {r + 1}: {name:44}{seconds:8.2f} s {n / seconds:6.3f} pages/s"
                      f"{cpu / n:7.2f} CPU s/page", flush=True)

    wall = {name: min(s for s, _ in values) for name, values in times.items()}
    cpu_best = {name: min(c for _, c in values) for name, values in times.items()}
    png, pnm = "raw tesseract CLI, PNG rasters", "raw tesseract CLI, PNM rasters"
    print()
    print(f"best of {args.rounds}{'':35}{'wall s':>8}{'pages/s':>9}{'vs PNG':>8}{'vs PNM':>8}"
          f"{'CPU s/page':>12}{'vs PNG':>8}{'vs PNM':>8}")
    for name in sides:
        print(f"{name:44}{wall[name]:>8.2f}{n / wall[name]:>9.3f}{wall[png] / wall[name]:>8.3f}"
              f"{wall[pnm] / wall[name]:>8.3f}{cpu_best[name] / n:>12.3f}{cpu_best[png] / cpu_best[name]:>8.3f}"
              f"{cpu_best[pnm] / cpu_best[name]:>8.3f}")
    print("(ratios are throughput against the raw CLI: above 1 the engine is faster)")


if __name__ == "__main__":
    main()
