"""Lossless scans: the raw tesseract CLI on page rasters (PNG, PNM) against the engine on a PDF storing the
same rasters losslessly (Flate), read as stored; and the same PDF with every page rendered, as before.

Run from the repository root: .venv/bin/python -m bench.lossless_bench [--pages 8] [--rounds 5]

Needs no services: it drives the engine directly. The rounds alternate between the sides (in reverse every
other round), so other work on the machine weighs on each alike; every round is printed as measured, then
each side's throughput against the raw CLI as the median of its per-round ratios, and best against best.
Besides wall time, each side's CPU time (this process and the programs it ran) is printed: on a shared
machine the wall time swings with others' load, the CPU a page costs much less.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
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
from common.engine.pdf import pages as pdf_pages
from common.engine.ocr import OcrLimits, TesseractEngine
from common.engine.pdf.document import PdfDocument
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
    parser.add_argument("--rounds", type=int, default=5)
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
            # The comparison the goal is about first, its two sides back to back in every round.
            "raw tesseract CLI, PNG rasters": lambda: raw_tesseract(pngs, workers),
            "engine, Flate PDF, text only": lambda: engine(pdf_path, workers),
            "raw tesseract CLI, PNM rasters": lambda: raw_tesseract(pnms, workers),
            "raw tesseract CLI, PNG rasters, hOCR": lambda: raw_tesseract(pngs, workers, hocr=True),
            "engine, Flate PDF, + searchable PDF, hOCR": lambda: engine(pdf_path, workers, out),
            "engine, Flate PDF, rendered (old route)": lambda: rendered(lambda: engine(pdf_path, workers)),
        }
        engine(pdf_path, workers)  # warm-up: language data into the page cache, imports done
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        for r in range(args.rounds):
            # Every other round runs the sides in reverse, so a load that grows or fades within a round
            # weighs on the first and the last side alike.
            for name in (list(sides) if r % 2 == 0 else list(reversed(sides))):
                side = sides[name]
                cpu_before = cpu_seconds()
                seconds = side()
                cpu = cpu_seconds() - cpu_before
                times[name].append((seconds, cpu))
                print(f"round {r + 1}: {name:44}{seconds:8.2f} s {n / seconds:6.3f} pages/s"
                      f"{cpu / n:7.2f} CPU s/page", flush=True)

    summary(times, n, args.rounds)


PNG, PNM = "raw tesseract CLI, PNG rasters", "raw tesseract CLI, PNM rasters"
GOAL = 0.97


def summary(times: dict[str, list[tuple[float, float]]], pages: int, rounds: int) -> None:
    """Each side against the raw CLI, round by round: a round's sides ran back to back, so one ratio per round
    compares them under the same load, and the median of those ratios stands for the run. Best of each
    side (fastest round) beside it."""
    def ratios(base: str, name: str, column: int) -> list[float]:
        return [b[column] / s[column] for b, s in zip(times[base], times[name])]

    print()
    print(f"{rounds} rounds; throughput ratio vs the raw CLI, median of the rounds' ratios (best vs best):")
    print(f"{'':44}{'best wall s':>12}{'CPU s/page':>11}{'wall vs PNG':>18}{'CPU vs PNG':>18}{'CPU vs PNM':>18}")
    for name, values in times.items():
        wall, cpu = min(s for s, _ in values), min(c for _, c in values)
        cells = []
        for base, column in ((PNG, 0), (PNG, 1), (PNM, 1)):
            best = min(v[column] for v in times[base]) / min(v[column] for v in values)
            cells.append(f"{statistics.median(ratios(base, name, column)):.3f} ({best:.3f})")
        print(f"{name:44}{wall:>12.2f}{cpu / pages:>11.3f}{cells[0]:>18}{cells[1]:>18}{cells[2]:>18}")
    engine_side = "engine, Flate PDF, text only"
    wall_ratio = statistics.median(ratios(PNG, engine_side, 0))
    cpu_ratio = statistics.median(ratios(PNG, engine_side, 1))
    print(f"\nengine (text only) vs raw tesseract CLI on PNG rasters: {wall_ratio:.3f}x wall, {cpu_ratio:.3f}x CPU "
          f"(median of {rounds} rounds; goal >= {GOAL}x: "
          f"{'met' if min(wall_ratio, cpu_ratio) >= GOAL else 'NOT met'})")
    print("(ratios are throughput against the raw CLI: above 1 the engine is faster)")


if __name__ == "__main__":
    main()
