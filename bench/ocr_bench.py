"""OCR throughput: the whole pipeline (upload to completed) against the raw tesseract CLI on the same pages.

Run from the repository root: ./local-stack/bootstrap && .venv/bin/python -m bench.ocr_bench [--pages 8]

Starts its own stack on free ports in a temporary folder and stops it at the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from bench.pages import page_lines, scanned_page
from ocrstack.stack import LocalStack, StackPorts
from tests.support import Gateway

REPO = Path(__file__).resolve().parent.parent


def raw_tesseract(paths: list[Path], workers: int) -> float:
    """Seconds for `tesseract page stdout` (plain text) over all pages, `workers` at a time, one thread each."""
    env = dict(os.environ, OMP_THREAD_LIMIT="1")

    def one(path: Path) -> None:
        subprocess.run(["tesseract", str(path), "stdout", "-l", "eng"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, paths))
    return time.perf_counter() - started


def ocrmypdf(pdf_path: Path, workers: int) -> float | None:
    """Seconds for `ocrmypdf --jobs N` on the same PDF (plain PDF output, no PDF/A); None if not installed."""
    if importlib.util.find_spec("ocrmypdf") is None:
        return None
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ocrmypdf", "--jobs", str(workers), "--output-type", "pdf", "-q",
                    str(pdf_path), str(pdf_path.with_suffix(".ocr.pdf"))], env=env, check=True)
    return time.perf_counter() - started


def character_error_rate(found: str, truth: str) -> float:
    """Edit distance over the true text's length, whitespace runs folded to one space."""
    from rapidfuzz.distance import Levenshtein

    found, truth = " ".join(found.split()), " ".join(truth.split())
    return Levenshtein.distance(found, truth) / max(1, len(truth))


def pipeline(gateway: Gateway, pdf: bytes, texts: list[str] | None = None) -> float:
    """Seconds from sending the upload to the job's recorded finish (server and bench share one clock).

    Polled twice a second: polling faster would take CPU from the job it measures (20 polls a second
    cost about 10 % here), and the finish time comes from the job, not from when a poll saw it.
    """
    started = time.time()
    job_id = gateway.upload(pdf, "bench.pdf").json()["job_id"]
    while True:
        body = gateway.status(job_id).json()
        if body["status"] in ("completed", "failed"):
            break
        time.sleep(0.5)
    if body["status"] != "completed":
        raise SystemExit(f"pipeline job failed: {body['error']}")
    finished = datetime.fromisoformat(body["finished_at"].replace("Z", "+00:00")).timestamp()
    elapsed = finished - started
    if texts is not None:
        texts.append(body["text"])
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
        pdf_path = folder / "bench.pdf"
        pdf_path.write_bytes(pdf)
        # The same pages as the PDF stores them (JPEG): what a scanner's PDF hands to any OCR tool.
        subprocess.run(["pdfimages", "-j", str(pdf_path), str(folder / "stored")], check=True)
        jpegs = sorted(folder.glob("stored-*.jpg"))

        n = args.pages
        print(f"{n} scanned A4 pages at 300 DPI, {workers} parallel pages, OMP_THREAD_LIMIT=1, best of {args.rounds}")
        print(f"{'':36}{'seconds':>10}{'pages/s':>10}{'vs raw':>10}{'vs raw JPEG':>13}", flush=True)
        # Each figure is printed as soon as it is measured: a late failure loses none of the earlier ones.
        raw = min(raw_tesseract(paths, workers) for _ in range(args.rounds))
        raw_jpeg = min(raw_tesseract(jpegs, workers) for _ in range(args.rounds))

        def row(name: str, seconds: float) -> None:
            print(f"{name:36}{seconds:>10.2f}{n / seconds:>10.2f}{raw / seconds:>10.2f}{raw_jpeg / seconds:>13.2f}",
                  flush=True)

        row("raw tesseract CLI (PPM pages)", raw)
        row("raw tesseract CLI (the PDF's JPEGs)", raw_jpeg)
        mypdf = ocrmypdf(pdf_path, workers)
        if mypdf:
            row("ocrmypdf --jobs N (same PDF)", min(mypdf, ocrmypdf(pdf_path, workers) or mypdf))
        else:
            print("ocrmypdf: not installed (.venv/bin/pip install -r requirements-bench.txt)", flush=True)
        stack = LocalStack(folder / "stack", StackPorts.free(), REPO)
        print(f"starting a local stack in {folder / 'stack'} ...", flush=True)
        stack.start()
        try:
            gateway = Gateway(stack.gateway_url, api_key=stack.admin_key)
            texts: list[str] = []
            pipeline(gateway, pdf, texts)  # warm-up: language data and function imports
            row("pipeline upload->completed", min(pipeline(gateway, pdf) for _ in range(args.rounds)))
        finally:
            stack.stop()
    truth = "\n".join("\n".join(page_lines(i)) for i in range(n))
    print(f"character error rate of the pipeline's text: {character_error_rate(texts[0], truth):.4f}", flush=True)


if __name__ == "__main__":
    main()
