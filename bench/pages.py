"""Benchmark documents: A4 pages at 300 DPI with known text, rendered as a scanner would deliver them."""

from __future__ import annotations

import io
import os
import random
import subprocess
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

WORDS = ("invoice total amount due payment received customer account number reference date "
         "shipping address delivery order quantity price description tax rate balance").split()


def page_lines(number: int, lines: int = 30) -> list[str]:
    return [f"{line + 1:02d} " + " ".join(WORDS[(number * 7 + line * 3 + i) % len(WORDS)] for i in range(9))
            for line in range(lines)]


def scanned_page(number: int, lines: int = 30) -> Image.Image:
    """Page `number`: `lines` lines of words in reading order, black on white, 2480x3508 pixels."""
    page = Image.new("L", (2480, 3508), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=44)
    for row, text in enumerate(page_lines(number, lines)):
        draw.text((180, 220 + row * 100), text, font=font, fill=0)
    return page


def scanned_pdf(count: int, lines: int = 30) -> bytes:
    """A PDF of `count` image-only pages (no text layer)."""
    pages = [scanned_page(n, lines) for n in range(count)]
    buf = io.BytesIO()
    pages[0].save(buf, format="PDF", save_all=True, append_images=pages[1:], resolution=300)
    return buf.getvalue()


def cheap_scan(page: Image.Image, seed: int, speckle_every: int = 120, quality: int = 30) -> Image.Image:
    """What a cheap scanner makes of a page: blur, a speckle every `speckle_every` pixels, JPEG artefacts."""
    rng = random.Random(seed)
    out = page.filter(ImageFilter.GaussianBlur(1.2))
    pixels = out.load()
    for _ in range(out.width * out.height // speckle_every):
        x, y = rng.randrange(out.width), rng.randrange(out.height)
        pixels[x, y] = rng.choice((0, 96, 160, 255))  # type: ignore[index]
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("L")


def born_digital_pdf(count: int, folder: Path, lines: int = 30) -> Path:
    """Pages with a real text layer: tesseract's PDF renderer of each scanned page, merged with pdfunite."""
    parts = []
    for n in range(count):
        image = folder / f"bd-{n:03d}.png"
        scanned_page(n, lines).save(image)
        subprocess.run(["tesseract", str(image), str(folder / f"bd-{n:03d}"), "pdf"], check=True,
                       capture_output=True, env=dict(os.environ, OMP_THREAD_LIMIT="1"))
        parts.append(str(folder / f"bd-{n:03d}.pdf"))
    out = folder / "born-digital.pdf"
    subprocess.run(["pdfunite", *parts, str(out)], check=True)
    return out
