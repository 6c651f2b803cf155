"""The OCR engine alone: born-digital pages against OCR of the same pages, and peak memory as PDFs grow.

Run from the repository root: ./local-stack/bootstrap && .venv/bin/pip install -r requirements-bench.txt &&
     .venv/bin/python -m bench.engine_bench

Needs no services: it drives common.ocr directly, each measurement in a fresh Python process so peak
RSS belongs to that document alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from typing import Any

from PIL import Image

from bench.pages import born_digital_pdf, cheap_scan, page_lines, scanned_page, scanned_pdf

# Runs in a child process: recognise one PDF, report pages, seconds, methods and peak RSS.
_MEASURE = """
import json, resource, sys, time
from pathlib import Path
from common.logging import setup
from common.engine.ocr import OcrLimits, TesseractEngine
setup("engine-bench", "WARNING")
path, workers = Path(sys.argv[1]), int(sys.argv[2])
engine = TesseractEngine(OcrLimits(max_pages=1000, max_page_pixels=10**8, page_timeout=300, dpi=300, workers=workers))
started = time.perf_counter()
# Like ocr-process, each page is let go once handled: holding every page's words is not the engine's memory.
pages, methods = 0, set()
for page in engine.recognise(path, "application/pdf", "eng", lambda n: None, Path(sys.argv[3])):
    pages, methods = pages + 1, methods | {page.method}
elapsed = time.perf_counter() - started
print(json.dumps({
    "pages": pages, "seconds": elapsed, "methods": sorted(methods),
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) parent that forked us.
    "rss_mib": int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024,
    "children_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def measure(pdf: Path, workers: int, folder: Path) -> dict[str, Any]:
    artifacts = folder / f"artifacts-{pdf.stem}"
    artifacts.mkdir(exist_ok=True)
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(pdf), str(workers), str(artifacts)],
                         capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def degraded(page: Image.Image, seed: int) -> Image.Image:
    """A poor scan of a page: 1.5 degree skew, blur, speckle noise and JPEG artefacts."""
    skewed = page.rotate(1.5, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    return cheap_scan(skewed, seed, speckle_every=150, quality=35)


def error_rate(images: list[Image.Image], folder: Path, tag: str, clean_up: bool) -> tuple[float, float]:
    """Character error rate over the pages from the engine's own text (whitespace runs folded), and
    seconds per page; `clean_up` is the engine's OCR_CLEAN_UP (median filter + autocontrast)."""
    from rapidfuzz.distance import Levenshtein

    from common.engine.ocr import OcrLimits, TesseractEngine

    engine = TesseractEngine(OcrLimits(max_pages=10, max_page_pixels=10**8, page_timeout=300, dpi=300, workers=2,
                                       clean_up=clean_up))
    errors = total = 0
    seconds = 0.0
    for n, image in enumerate(images):
        path = folder / f"{tag}-{n}.png"
        image.save(path)
        started = time.perf_counter()
        [page] = engine.recognise(path, "image/png", "eng", lambda c: None)
        seconds += time.perf_counter() - started
        truth = " ".join(" ".join(page_lines(n)).split())
        errors += Levenshtein.distance(" ".join(page.text.split()), truth)
        total += len(truth)
    return errors / total, seconds / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=8, help="pages for the born-digital comparison")
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=100)
    parser.add_argument("--cer-pages", type=int, default=3, help="pages for the error-rate comparison")
    args = parser.parse_args()
    workers = os.cpu_count() or 1
    from common.logging import setup

    setup("engine-bench", "WARNING")  # the engine's debug lines would bury the table

    with tempfile.TemporaryDirectory(prefix="engine-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        scanned = folder / "scanned.pdf"
        scanned.write_bytes(scanned_pdf(args.pages))
        digital = born_digital_pdf(args.pages, folder)
        ocr = measure(scanned, workers, folder)
        layer = measure(digital, workers, folder)

        # Short pages keep the 100-page run quick; memory per page is what matters here.
        small, large = folder / "small.pdf", folder / "large.pdf"
        small.write_bytes(scanned_pdf(args.small, lines=5))
        large.write_bytes(scanned_pdf(args.large, lines=5))
        rss_small = measure(small, workers, folder)
        rss_large = measure(large, workers, folder)

        clean = [scanned_page(n) for n in range(args.cer_pages)]
        poor = [degraded(page, seed=n) for n, page in enumerate(clean)]
        rates = {
            "clean scans": error_rate(clean, folder, "clean", clean_up=False),
            "clean scans, OCR_CLEAN_UP": error_rate(clean, folder, "clean-up", clean_up=True),
            "degraded scans": error_rate(poor, folder, "poor", clean_up=False),
            "degraded scans, OCR_CLEAN_UP": error_rate(poor, folder, "poor-up", clean_up=True),
        }
        total = time.perf_counter() - started

    print(f"\n{args.pages} A4 pages at 300 DPI, {workers} parallel pages ({total:.0f} s in all)")
    print(f"{'':34}{'seconds':>9}{'pages/s':>10}{'method':>12}")
    for name, m in (("scanned PDF, OCR", ocr), ("born-digital PDF, text layer", layer)):
        print(f"{name:34}{m['seconds']:>9.2f}{m['pages'] / m['seconds']:>10.2f}{','.join(m['methods']):>12}")
    print(f"text layer / OCR speed: {(layer['pages'] / layer['seconds']) / (ocr['pages'] / ocr['seconds']):.0f}x")
    print()
    print(f"{'peak RSS':34}{'python MiB':>11}{'largest child MiB':>19}")
    for name, m in ((f"{args.small}-page PDF", rss_small), (f"{args.large}-page PDF", rss_large)):
        print(f"{name:34}{m['rss_mib']:>11.1f}{m['children_rss_mib']:>19.1f}")
    print(f"{args.large}-page / {args.small}-page peak RSS (python): {rss_large['rss_mib'] / rss_small['rss_mib']:.2f}x")
    print()
    print(f"{'character error rate, ' + str(args.cer_pages) + ' pages (known text)':36}{'CER':>8}{'s/page':>9}")
    for name, (rate, per_page) in rates.items():
        print(f"  {name:34}{rate:>8.4f}{per_page:>9.2f}")


if __name__ == "__main__":
    main()
