"""Word recall and precision of the OCR engine per kind of scan, and the PDF renderer chosen by the same measure.

Run from the repository root: .venv/bin/python -m bench.quality_bench [--pages 2]

Needs no services: each kind of scan (clean, skewed, noisy, rotated 90/180, low contrast) is made from
pages of known text, put in a PDF as a scanner would (a JPEG per page, placed at 300 DPI), and read by
the engine. The renderer comparison renders the same PDFs with pdftoppm and pdftocairo and reads each
raster with the same tesseract command. Every figure is printed as soon as it is measured.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from bench.pages import born_digital_pdf, cheap_scan, page_lines, scanned_page

_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> Counter[str]:
    return Counter(_TOKEN.findall(text.lower()))


def recall_precision(found: str, truth: str) -> tuple[float, float]:
    """Words matched as a multiset: recall over the true words, precision over the words found."""
    got, want = tokens(found), tokens(truth)
    matched = sum((got & want).values())
    return matched / max(1, sum(want.values())), matched / max(1, sum(got.values()))


def skewed(page: Image.Image, seed: int) -> Image.Image:
    return page.rotate(2.5 if seed % 2 else -2.0, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)


def noisy(page: Image.Image, seed: int) -> Image.Image:
    """Blur, speckles and the JPEG artefacts of a cheap scanner."""
    return cheap_scan(page, seed)


def low_contrast(page: Image.Image, seed: int) -> Image.Image:
    """Gray text on a gray page: a faded print scanned without contrast correction."""
    return page.point(lambda v: 150 + v * 60 // 255)


SCANS: dict[str, Callable[[Image.Image, int], Image.Image]] = {
    "clean": lambda page, seed: page,
    "skewed": skewed,
    "noisy": noisy,
    "rotated 90": lambda page, seed: page.rotate(90, expand=True),
    "rotated 180": lambda page, seed: page.rotate(180),
    "low contrast": low_contrast,
}


def pdf_of(images: list[Image.Image], out: Path) -> Path:
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=300)
    return out


def engine_read(pdf: Path, workers: int) -> tuple[list[str], float]:
    from common.engine.ocr import OcrLimits, TesseractEngine

    engine = TesseractEngine(OcrLimits(max_pages=100, max_page_pixels=10**8, page_timeout=300, dpi=300,
                                       workers=workers))
    started = time.perf_counter()
    texts = [page.text for page in engine.recognise(pdf, "application/pdf", "eng", lambda n: None)]
    return texts, time.perf_counter() - started


def rendered_read(pdf: Path, number: int, renderer: str, folder: Path) -> str:
    """One page rendered gray at 300 DPI as a TIFF by `renderer`, read by tesseract as the engine runs it."""
    root = folder / f"{renderer}-{pdf.stem}-{number}"
    subprocess.run([renderer, "-r", "300", "-f", str(number), "-l", str(number), "-cropbox", "-gray", "-tiff",
                    "-singlefile", str(pdf), str(root)], check=True, capture_output=True)
    out = subprocess.run(["tesseract", str(root.with_suffix(".tif")), "-", "-l", "eng"], check=True,
                         capture_output=True, env=dict(os.environ, OMP_THREAD_LIMIT="1"))
    return out.stdout.decode()


def layer_throughput(pdf: Path, workers: int, folder: Path, rounds: int) -> float:
    """Pages per second of the engine on a born-digital PDF, outputs written (best of `rounds`)."""
    from common.engine.ocr import OcrLimits, TesseractEngine

    engine = TesseractEngine(OcrLimits(max_pages=100, max_page_pixels=10**8, page_timeout=300, dpi=300,
                                       workers=workers))
    best = float("inf")
    for round_ in range(rounds):
        out = folder / f"layer-out-{round_}"
        out.mkdir()
        started = time.perf_counter()
        recognition = engine.recognise(pdf, "application/pdf", "eng", lambda n: None, out)
        pages = sum(1 for _ in recognition)
        best = min(best, time.perf_counter() - started)
    return pages / best


def ocr_throughput(pdf: Path, workers: int, rounds: int) -> float:
    """Pages per second of the engine OCRing a scanned PDF (best of `rounds`): what the layer check must not slow."""
    best = float("inf")
    for _ in range(rounds):
        texts, seconds = engine_read(pdf, workers)
        best = min(best, seconds)
    return len(texts) / best


def check_ms(texts: list[str]) -> float | None:
    """Milliseconds per page of the text-layer usability check; None where the engine has none (before)."""
    try:
        from common.engine.pdf.text_layer import judge
    except ImportError:
        return None
    started = time.perf_counter()
    for _ in range(20):
        for text in texts:
            judge(text, "eng")
    return (time.perf_counter() - started) * 1000 / (20 * len(texts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2, help="pages per kind of scan")
    parser.add_argument("--lines", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--throughput-only", action="store_true",
                        help="only OCR pages/s on 8 clean scanned pages, best of 3 (to compare two checkouts)")
    args = parser.parse_args()
    from common.logging import setup

    setup("quality-bench", "WARNING")
    truths = [" ".join(page_lines(n, args.lines)) for n in range(args.pages)]
    with tempfile.TemporaryDirectory(prefix="quality-bench-") as tmp:
        folder = Path(tmp)
        if args.throughput_only:
            scanned = pdf_of([scanned_page(n, args.lines) for n in range(8)], folder / "scanned.pdf")
            rate = ocr_throughput(scanned, args.workers, rounds=3)
            print(f"scanned PDF, 8 pages, OCR: {rate:.3f} pages/s", flush=True)
            return
        pdfs: dict[str, Path] = {}
        print(f"engine, {args.pages} A4 pages per kind of scan, lang eng, OCR_DPI 300", flush=True)
        print(f"{'scan':16}{'recall':>8}{'precision':>11}{'s/page':>8}", flush=True)
        for name, change in SCANS.items():
            images = [change(scanned_page(n, args.lines), n) for n in range(args.pages)]
            pdfs[name] = pdf_of(images, folder / f"{name.replace(' ', '-')}.pdf")
            texts, seconds = engine_read(pdfs[name], args.workers)
            scores = [recall_precision(text, truth) for text, truth in zip(texts, truths)]
            recall = sum(s[0] for s in scores) / len(scores)
            precision = sum(s[1] for s in scores) / len(scores)
            print(f"{name:16}{recall:>8.3f}{precision:>11.3f}{seconds / args.pages:>8.2f}", flush=True)

        print("", flush=True)
        digital = born_digital_pdf(args.pages * 4, folder, args.lines)
        rate = layer_throughput(digital, args.workers, folder, rounds=3)
        print(f"born-digital PDF, {args.pages * 4} pages, text layer, outputs written: {rate:.1f} pages/s", flush=True)
        ms = check_ms(truths)
        print("text-layer usability check: " + (f"{ms:.3f} ms per page" if ms is not None else "none"), flush=True)

        print("\nrenderer (gray TIFF at 300 DPI, then tesseract -l eng), word recall / precision", flush=True)
        print(f"{'scan':16}{'pdftoppm':>20}{'pdftocairo':>20}", flush=True)
        for name in ("clean", "skewed", "noisy", "low contrast"):
            row = f"{name:16}"
            for renderer in ("pdftoppm", "pdftocairo"):
                scores = [recall_precision(rendered_read(pdfs[name], n + 1, renderer, folder), truths[n])
                          for n in range(args.pages)]
                recall = sum(s[0] for s in scores) / len(scores)
                precision = sum(s[1] for s in scores) / len(scores)
                row += f"{recall:>12.3f} / {precision:.3f}"
            print(row, flush=True)


if __name__ == "__main__":
    main()
