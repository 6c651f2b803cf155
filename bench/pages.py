"""Benchmark documents: A4 pages at 300 DPI with known text, rendered as a scanner would deliver them."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

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
