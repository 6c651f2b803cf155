"""OCR throughput: the whole pipeline (upload to completed) against the raw tesseract CLI on the same pages.

Run: ./local-stack/bootstrap && PYTHONPATH=.:local-stack .venv/bin/python bench/ocr_bench.py [--pages 8]

Starts its own stack on free ports in a temporary folder and stops it at the end.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "local-stack")]

from ocrstack.stack import LocalStack, StackPorts  # noqa: E402
from tests.support import Gateway  # noqa: E402

WORDS = ("invoice total amount due payment received customer account number reference date "
         "shipping address delivery order quantity price description tax rate balance").split()


def scanned_page(number: int) -> Image.Image:
    """An A4 page at 300 DPI with 30 lines of text, as a scanner would produce it."""
    page = Image.new("L", (2480, 3508), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=44)
    for line in range(30):
        words = [WORDS[(number * 7 + line * 3 + i) % len(WORDS)] for i in range(9)]
        draw.text((180, 220 + line * 100), f"{line + 1:02d} " + " ".join(words), font=font, fill=0)
    return page


def raw_tesseract(paths: list[Path], workers: int) -> float:
    """Seconds for `tesseract page out` over all pages, `workers` at a time, one thread each."""
    env = dict(os.environ, OMP_THREAD_LIMIT="1")

    def one(path: Path) -> None:
        subprocess.run(["tesseract", str(path), "stdout", "-l", "eng"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, paths))
    return time.perf_counter() - started


def pipeline(gateway: Gateway, pdf: bytes) -> float:
    """Seconds from the upload request to the job reading completed."""
    started = time.perf_counter()
    job_id = gateway.upload(pdf, "bench.pdf").json()["job_id"]
    while True:
        body = gateway.status(job_id).json()
        if body["status"] in ("completed", "failed"):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if body["status"] != "completed":
        raise SystemExit(f"pipeline job failed: {body['error']}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="best of N for each side")
    args = parser.parse_args()
    workers = os.cpu_count() or 1

    with tempfile.TemporaryDirectory(prefix="ocr-bench-") as tmp:
        folder = Path(tmp)
        pages = [scanned_page(n) for n in range(args.pages)]
        paths = []
        for n, page in enumerate(pages):
            path = folder / f"page-{n:03d}.ppm"
            page.save(path)
            paths.append(path)
        buf = io.BytesIO()
        pages[0].save(buf, format="PDF", save_all=True, append_images=pages[1:], resolution=300)
        pdf = buf.getvalue()

        stack = LocalStack(folder / "stack", StackPorts.free(), REPO)
        print(f"starting a local stack in {folder / 'stack'} ...", flush=True)
        stack.start()
        try:
            gateway = Gateway(stack.gateway_url)
            pipeline(gateway, pdf)  # warm-up: language data and function imports
            raw = min(raw_tesseract(paths, workers) for _ in range(args.rounds))
            piped = min(pipeline(gateway, pdf) for _ in range(args.rounds))
        finally:
            stack.stop()

    n = args.pages
    print()
    print(f"{n} scanned A4 pages at 300 DPI, {workers} parallel pages, OMP_THREAD_LIMIT=1, best of {args.rounds}")
    print(f"{'':32}{'seconds':>10}{'pages/s':>10}{'vs raw':>10}")
    print(f"{'raw tesseract CLI (PPM pages)':32}{raw:>10.2f}{n / raw:>10.2f}{1.0:>10.2f}")
    print(f"{'pipeline upload->completed':32}{piped:>10.2f}{n / piped:>10.2f}{raw / piped:>10.2f}")


if __name__ == "__main__":
    main()
