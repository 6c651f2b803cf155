"""Character error rate, word recall and seconds per page: the engine, the raw tesseract CLI and OCRmyPDF side by side
on pages of real prose scanned in the ways scans go wrong.

Run from the repository root: .venv/bin/python -m bench.quality_bench [--pages 2] [--types clean,skew-5]
[--tools pipeline,tesseract]

Needs no services. The pages are made at run time (bench/corpus.py) from prose found on the machine: Debian's
licence texts in English, its translated manual pages in German and French. Each page type is A4 at 300 DPI
(200 DPI for dpi-200) in DejaVu Serif 11 pt, 34 lines, given as the file a scanner would write: PNG, JPEG, or a
JPEG wrapped in a PDF. Every tool reads the same file, one page at a time, one tesseract thread
(OMP_THREAD_LIMIT=1); the raw CLI reads a PDF type's JPEG itself. OCRmyPDF runs as its command line does
(its start-up counts, as it does for a user), writing a plain PDF (`--output-type pdf`: PDF/A conversion is
not OCR) and its text as `--sidecar`. One row is printed per page and tool as it is measured, then the
tables per page type.

Other figures: --renderers (pdftoppm vs pdftocairo on the pages wrapped in PDFs, the engine's renderer
choice), --layer (born-digital text-layer throughput and the usability check's cost), --throughput-only
(OCR pages/s on 8 synthetic pages, best of 3, to compare two checkouts).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import corpus
from bench.pages import born_digital_pdf, page_lines, scanned_page

TOOLS = {
    "pipeline": "the engine in-process (common.engine.ocr.TesseractEngine), the page's language given",
    "pipeline-auto": "the same with lang=auto (the default): the language identified on the page",
    "tesseract": "raw tesseract CLI, plain text",
    "ocrmypdf": "OCRmyPDF defaults",
    "ocrmypdf-dcr": "OCRmyPDF --deskew --clean --rotate-pages",
}
THREAD_ENV = dict(os.environ, OMP_THREAD_LIMIT="1")
# A page read at word recall under this lost text: the pipeline must have said so with a warning.
SILENT_RECALL = 0.8


@dataclass(frozen=True)
class PageType:
    name: str
    kinds: tuple[str, ...] = ()  # corpus.degrade kinds, applied in order
    lang: str = "eng"
    dpi: int = 300
    container: str = "png"  # png, jpeg (quality 40) or pdf (a JPEG of quality 85 wrapped by img2pdf)


PAGE_TYPES = [
    PageType("clean"),
    PageType("skew-1", ("skew1",)),
    PageType("skew-3", ("skew3",)),
    PageType("skew-5", ("skew5",)),
    PageType("grey-sheet", ("grey-sheet",)),
    PageType("yellow", ("yellow",)),
    PageType("light-blue", ("light-blue",)),
    PageType("red", ("red",)),
    PageType("noise", ("noise",)),
    PageType("blur", ("blur",)),
    PageType("jpeg-40", (), container="jpeg"),
    PageType("dpi-200", (), dpi=200),
    PageType("low-contrast", ("low-contrast",)),
    PageType("german", (), lang="deu"),
    PageType("french", (), lang="fra"),
    PageType("pdf-clean", (), container="pdf"),
    PageType("pdf-skew-3", ("skew3", "noise"), container="pdf"),  # a crooked, grainy scan as a PDF
]
MEDIA = {"png": "image/png", "jpeg": "image/jpeg", "pdf": "application/pdf"}


@dataclass(frozen=True)
class Sample:
    """One page file of a page type and the text printed on it."""
    kind: PageType
    number: int
    path: Path  # what the pipeline and OCRmyPDF read
    raster: Path  # what the raw CLI reads: the same file, or a PDF's JPEG
    truth: str


@dataclass(frozen=True)
class Score:
    cer: float
    recall: float
    seconds: float
    failed: bool = False
    warnings: tuple[str, ...] = ()  # the pipeline's warning codes on the page (other tools have none)


def normalised(text: str) -> str:
    """Compatibility forms folded (a ligature is its letters) and whitespace runs made one space."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def character_error_rate(found: str, truth: str) -> float:
    """Edit distance (insertions, deletions, substitutions) over the true text's length."""
    from rapidfuzz.distance import Levenshtein

    found, truth = normalised(found), normalised(truth)
    return Levenshtein.distance(found, truth) / max(1, len(truth))


_WORD = re.compile(r"\w+")


def word_recall(found: str, truth: str) -> float:
    """Share of the true words (a multiset, case kept) that the output holds."""
    got, want = Counter(_WORD.findall(normalised(found))), Counter(_WORD.findall(normalised(truth)))
    return sum((got & want).values()) / max(1, sum(want.values()))


def make_samples(types: list[PageType], pages: int, lines: int, font: Path | None, folder: Path) -> list[Sample]:
    """Each type's pages written to `folder`; English types share the same text, so they differ only in the scan."""
    import img2pdf

    texts: dict[tuple[str, int], list[str]] = {}
    samples = []
    for kind in types:
        key = (kind.lang, kind.dpi)
        if key not in texts:
            texts[key] = corpus.page_texts(corpus.prose(kind.lang), kind.dpi, pages, lines, font_path=font)
        for n, text in enumerate(texts[key]):
            image = corpus.render_page(text, kind.dpi, corpus.load_font(kind.dpi, font))
            for step in kind.kinds:
                image = corpus.degrade(image, step, seed=n + 1)
            stem = folder / f"{kind.name}-{n}"
            if kind.container == "png":
                path = raster = stem.with_suffix(".png")
                image.save(path, dpi=(kind.dpi, kind.dpi))
            elif kind.container == "jpeg":
                path = raster = stem.with_suffix(".jpg")
                path.write_bytes(corpus.jpeg_bytes(image, 40))
            else:
                raster, path = stem.with_suffix(".jpg"), stem.with_suffix(".pdf")
                raster.write_bytes(corpus.jpeg_bytes(image, 85))
                path.write_bytes(img2pdf.convert(raster.read_bytes()))
            samples.append(Sample(kind, n, path, raster, text))
    return samples


def engine_pages(path: Path, media_type: str, lang: str, workers: int = 1) -> list[Any]:
    from common.engine.ocr import OcrLimits, TesseractEngine

    engine = TesseractEngine(OcrLimits(max_pages=100, max_page_pixels=10**8, page_timeout=300, dpi=300,
                                       workers=workers))
    return list(engine.recognise(path, media_type, lang, lambda n: None))


def engine_text(path: Path, media_type: str, lang: str, workers: int = 1) -> str:
    return "\n".join(page.text for page in engine_pages(path, media_type, lang, workers))


def tesseract_text(path: Path, lang: str) -> str:
    out = subprocess.run(["tesseract", str(path), "-", "-l", lang], check=True, capture_output=True,
                         env=THREAD_ENV, timeout=600)
    return out.stdout.decode("utf-8", errors="replace")


def ocrmypdf_text(sample: Sample, options: list[str], folder: Path) -> str:
    sidecar = folder / f"{sample.path.stem}.{len(options)}.txt"
    dpi = [] if sample.kind.container == "pdf" else ["--image-dpi", str(sample.kind.dpi)]
    subprocess.run([sys.executable, "-m", "ocrmypdf", "-q", "--jobs", "1", "-l", sample.kind.lang,
                    "--output-type", "pdf", "--sidecar", str(sidecar), *dpi, *options, str(sample.path),
                    str(sidecar.with_suffix(".pdf"))], check=True, capture_output=True, env=THREAD_ENV, timeout=900)
    return sidecar.read_text(encoding="utf-8", errors="replace")


def read(tool: str, sample: Sample, folder: Path) -> str | tuple[str, tuple[str, ...]]:
    lang = sample.kind.lang
    if tool in ("pipeline", "pipeline-auto"):
        pages = engine_pages(sample.path, MEDIA[sample.kind.container], "auto" if tool == "pipeline-auto" else lang)
        return ("\n".join(page.text for page in pages),
                tuple(w.code.value for page in pages for w in page.warnings))
    if tool == "tesseract":
        return tesseract_text(sample.raster, lang)
    if tool == "ocrmypdf":
        return ocrmypdf_text(sample, [], folder)
    return ocrmypdf_text(sample, ["--deskew", "--clean", "--rotate-pages"], folder)


def measure(tool: str, sample: Sample, folder: Path) -> Score:
    from common.errors import PipelineError

    started = time.perf_counter()
    try:
        text = read(tool, sample, folder)
    except subprocess.CalledProcessError as e:
        message = e.stderr.decode(errors="replace").strip().splitlines()[-1:] if e.stderr else []
        print(f"    {tool} failed (exit {e.returncode}): {' '.join(message)}", flush=True)
        return Score(1.0, 0.0, time.perf_counter() - started, failed=True)
    except PipelineError as e:  # the engine's coded errors: a failed page scores as nothing read
        print(f"    {tool} failed: {e.code}: {e}", flush=True)
        return Score(1.0, 0.0, time.perf_counter() - started, failed=True)
    seconds = time.perf_counter() - started
    text, warnings = text if isinstance(text, tuple) else (text, ())
    return Score(character_error_rate(text, sample.truth), word_recall(text, sample.truth), seconds,
                 warnings=warnings)


def missing(tools: list[str], types: list[PageType]) -> list[str]:
    """What the chosen tools and page types need and the machine lacks, each with how to get it."""
    needs = []
    if importlib.util.find_spec("rapidfuzz") is None or importlib.util.find_spec("img2pdf") is None:
        needs.append("rapidfuzz, img2pdf: .venv/bin/pip install -r requirements-bench.txt")
    langs = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True).stdout.split()
    for lang in sorted({kind.lang for kind in types} - set(langs)):
        needs.append(f"tesseract language {lang}: apt-get install tesseract-ocr-{lang}")
    if any(tool.startswith("ocrmypdf") for tool in tools):
        if importlib.util.find_spec("ocrmypdf") is None:
            needs.append("ocrmypdf: .venv/bin/pip install -r requirements-bench.txt")
        if shutil.which("gs") is None:
            needs.append("Ghostscript (OCRmyPDF): apt-get install ghostscript")
    if "ocrmypdf-dcr" in tools and shutil.which("unpaper") is None:
        needs.append("unpaper (OCRmyPDF --clean): apt-get install unpaper")
    try:
        corpus.find_font()
    except corpus.CorpusMissing as e:
        needs.append(str(e))
    if "osd" not in langs and "ocrmypdf-dcr" in tools:
        needs.append("tesseract orientation data (--rotate-pages): apt-get install tesseract-ocr-osd")
    return needs


def mean(values: list[float]) -> float:
    return sum(values) / max(1, len(values))


def report(scores: dict[tuple[str, str], list[Score]], types: list[PageType], tools: list[str]) -> None:
    """Three tables (CER, word recall, seconds per page), a row per page type and a column per tool, then overall."""
    for title, pick, fmt in (("character error rate (mean)", lambda s: s.cer, "{:.4f}"),
                             ("word recall (mean)", lambda s: s.recall, "{:.3f}"),
                             ("seconds per page (mean)", lambda s: s.seconds, "{:.2f}")):
        print(f"\n{title}", flush=True)
        print(f"{'page type':14}" + "".join(f"{tool:>14}" for tool in tools), flush=True)
        for kind in types:
            cells = [fmt.format(mean([pick(s) for s in scores[(kind.name, tool)]])) for tool in tools]
            print(f"{kind.name:14}" + "".join(f"{cell:>14}" for cell in cells), flush=True)
    print("\noverall, every page of every type", flush=True)
    print(f"{'tool':14}{'CER':>10}{'recall':>10}{'s/page':>10}{'pages/s':>10}{'failed':>8}  what", flush=True)
    for tool in tools:
        every = [s for kind in types for s in scores[(kind.name, tool)]]
        total = sum(s.seconds for s in every)
        print(f"{tool:14}{mean([s.cer for s in every]):>10.4f}{mean([s.recall for s in every]):>10.3f}"
              f"{total / max(1, len(every)):>10.2f}{len(every) / max(total, 1e-9):>10.3f}"
              f"{sum(s.failed for s in every):>8}  {TOOLS[tool]}", flush=True)
    for tool in (t for t in tools if t.startswith("pipeline")):
        every = [s for kind in types for s in scores[(kind.name, tool)]]
        poor = [s for s in every if s.recall < SILENT_RECALL]
        silent = [s for s in poor if not s.warnings]
        print(f"{tool}: {len(poor)} page(s) with word recall under {SILENT_RECALL}, {len(silent)} of them without "
              f"a warning; {sum(bool(s.warnings) for s in every)} page(s) warned in all", flush=True)


def side_by_side(types: list[PageType], tools: list[str], pages: int, lines: int, font: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="quality-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        samples = make_samples(types, pages, lines, font, folder)
        print(f"{len(samples)} pages made in {time.perf_counter() - started:.1f} s "
              f"({pages} per type, {lines} lines, font {corpus.find_font(font).name})", flush=True)
        print(f"{'page type':14}{'page':>5}  {'tool':14}{'CER':>8}{'recall':>8}{'s':>7}", flush=True)
        scores: dict[tuple[str, str], list[Score]] = defaultdict(list)
        for sample in samples:
            for tool in tools:
                score = measure(tool, sample, folder)
                scores[(sample.kind.name, tool)].append(score)
                print(f"{sample.kind.name:14}{sample.number:>5}  {tool:14}{score.cer:>8.4f}{score.recall:>8.3f}"
                      f"{score.seconds:>7.2f}  {' '.join(score.warnings)}", flush=True)
        report(scores, types, tools)


def rendered_read(pdf: Path, renderer: str, lang: str, folder: Path) -> str:
    """A one-page PDF rendered gray at 300 DPI as a TIFF by `renderer`, read by tesseract as the engine runs it."""
    root = folder / f"{renderer}-{pdf.stem}"
    subprocess.run([renderer, "-r", "300", "-cropbox", "-gray", "-tiff", "-singlefile", str(pdf), str(root)],
                   check=True, capture_output=True)
    return tesseract_text(root.with_suffix(".tif"), lang)


def renderers(types: list[PageType], pages: int, lines: int, font: Path | None) -> None:
    """The engine's renderer choice: each page wrapped in a PDF, rendered by pdftoppm and pdftocairo, then read."""
    with tempfile.TemporaryDirectory(prefix="quality-bench-") as tmp:
        folder = Path(tmp)
        pdf_types = [PageType(t.name, t.kinds, t.lang, t.dpi, "pdf") for t in types if t.container != "jpeg"]
        samples = make_samples(pdf_types, pages, lines, font, folder)
        print("renderer (gray TIFF at 300 DPI, then tesseract), CER / word recall", flush=True)
        print(f"{'page type':14}{'pdftoppm':>20}{'pdftocairo':>20}", flush=True)
        for kind in pdf_types:
            row = f"{kind.name:14}"
            for renderer in ("pdftoppm", "pdftocairo"):
                texts = [(rendered_read(s.path, renderer, kind.lang, folder), s.truth)
                         for s in samples if s.kind == kind]
                row += (f"{mean([character_error_rate(*t) for t in texts]):>12.4f} / "
                        f"{mean([word_recall(*t) for t in texts]):.3f}")
            print(row, flush=True)


def layer_throughput(pdf: Path, workers: int, folder: Path, rounds: int) -> float:
    """Pages per second of the engine on a born-digital PDF, outputs written (best of `rounds`)."""
    from common.engine.ocr import OcrLimits, TesseractEngine

    engine = TesseractEngine(OcrLimits(max_pages=100, max_page_pixels=10**8, page_timeout=300, dpi=300,
                                       workers=workers))
    best, pages = float("inf"), 0
    for round_ in range(rounds):
        out = folder / f"layer-out-{round_}"
        out.mkdir()
        started = time.perf_counter()
        pages = sum(1 for _ in engine.recognise(pdf, "application/pdf", "eng", lambda n: None, out))
        best = min(best, time.perf_counter() - started)
    return pages / best


def check_ms(texts: list[str]) -> float:
    """Milliseconds per page of the text-layer usability check."""
    from common.engine.pdf.text_layer import judge

    started = time.perf_counter()
    for _ in range(20):
        for text in texts:
            judge(text, "eng")
    return (time.perf_counter() - started) * 1000 / (20 * len(texts))


def layer(pages: int, workers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="quality-bench-") as tmp:
        folder = Path(tmp)
        digital = born_digital_pdf(pages * 4, folder)
        rate = layer_throughput(digital, workers, folder, rounds=3)
        print(f"born-digital PDF, {pages * 4} pages, text layer, outputs written: {rate:.1f} pages/s", flush=True)
        ms = check_ms([" ".join(page_lines(n)) for n in range(pages)])
        print(f"text-layer usability check: {ms:.3f} ms per page", flush=True)


def throughput_only(workers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="quality-bench-") as tmp:
        pdf = Path(tmp) / "scanned.pdf"
        images = [scanned_page(n) for n in range(8)]
        images[0].save(pdf, format="PDF", save_all=True, append_images=images[1:], resolution=300)
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            engine_text(pdf, "application/pdf", "eng", workers)
            best = min(best, time.perf_counter() - started)
        print(f"scanned PDF, 8 pages, OCR: {8 / best:.3f} pages/s", flush=True)


def chosen(value: str, known: list[str], what: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise SystemExit(f"unknown {what}: {', '.join(unknown) or '(none)'}; choose from {', '.join(known)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2, help="pages per page type (the first N of a fixed set)")
    parser.add_argument("--types", default=",".join(t.name for t in PAGE_TYPES), help="page types, comma-separated")
    parser.add_argument("--tools", default=",".join(TOOLS), help="columns, comma-separated: " + ", ".join(TOOLS))
    parser.add_argument("--lines", type=int, default=corpus.LINES_PER_PAGE, help="lines of prose per page")
    parser.add_argument("--font", type=Path, help="a TrueType font file (default: DejaVu Serif, else Liberation Serif)")
    parser.add_argument("--workers", type=int, default=2, help="parallel pages for --layer and --throughput-only")
    parser.add_argument("--renderers", action="store_true", help="pdftoppm vs pdftocairo on the chosen page types")
    parser.add_argument("--layer", action="store_true", help="born-digital text-layer throughput and check cost")
    parser.add_argument("--throughput-only", action="store_true",
                        help="only OCR pages/s on 8 synthetic scanned pages, best of 3 (to compare two checkouts)")
    args = parser.parse_args()
    from common.logging import setup

    setup("quality-bench", "WARNING")
    if args.throughput_only:
        throughput_only(args.workers)
        return
    if args.layer:
        layer(args.pages, args.workers)
        return
    types = [t for name in chosen(args.types, [t.name for t in PAGE_TYPES], "page type")
             for t in PAGE_TYPES if t.name == name]
    tools = chosen(args.tools, list(TOOLS), "tool") if not args.renderers else ["tesseract"]
    needs = missing(tools, types)
    if needs:
        raise SystemExit("missing for these tools and page types (./local-stack/bootstrap --bench installs them; "
                         "or leave them out with --tools / --types):\n  " + "\n  ".join(needs))
    try:
        if args.renderers:
            renderers(types, args.pages, args.lines, args.font)
        else:
            side_by_side(types, tools, args.pages, args.lines, args.font)
    except corpus.CorpusMissing as e:
        raise SystemExit(f"missing prose for a page type (or leave it out with --types): {e}") from e


if __name__ == "__main__":
    main()
