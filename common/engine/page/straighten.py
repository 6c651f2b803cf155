"""A page raster straightened for tesseract (turned, deskewed, made grey, its background evened out), and the
way back: what tesseract found on the straightened raster, placed on the page as the user scanned it.

Every turn is a rotation about the raster's centre with the canvas grown to hold it (PIL's `expand`), so
any number of them add up to one angle about the centre: one angle and the two sizes map every point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from common.engine.page.analysis import PageAnalysis
from common.models import Line, Word

# A lean under this is left alone: tesseract's own line finding copes, and turning costs a resample.
MIN_SKEW = 0.3


@dataclass(frozen=True)
class Straightening:
    """The raster tesseract read: the original turned anticlockwise by `angle` degrees about its centre
    (the canvas grown to hold it), from `original` to `read` pixels (width, height)."""

    angle: float
    original: tuple[int, int]
    read: tuple[int, int]

    @staticmethod
    def none(size: tuple[int, int]) -> Straightening:
        return Straightening(0.0, size, size)

    @property
    def rotation(self) -> int:
        """The quarter turn within the angle, clockwise degrees (0, 90, 180, 270), as status reports it."""
        return int(round(-self.angle / 90.0)) % 4 * 90

    @property
    def skew(self) -> float:
        """The rest of the angle: degrees the page's lines leaned anticlockwise, once it was upright."""
        rest = -self.angle - self.rotation
        return round(((rest + 180.0) % 360.0) - 180.0, 2)

    def then(self, degrees: float, read: tuple[int, int]) -> Straightening:
        """This straightening followed by a further turn of the read raster (to `read` pixels)."""
        return Straightening(self.angle + degrees, self.original, read)

    def to_original(self, x: float, y: float) -> tuple[int, int]:
        """A point of the read raster on the original page (pixels; y down)."""
        t = math.radians(self.angle)
        dx, dy = x - self.read[0] / 2, y - self.read[1] / 2
        # PIL turned the page anticlockwise as seen (y down): undoing it turns the offset back.
        ox = dx * math.cos(t) - dy * math.sin(t)
        oy = dx * math.sin(t) + dy * math.cos(t)
        return round(ox + self.original[0] / 2), round(oy + self.original[1] / 2)

    def polygon(self, left: int, top: int, width: int, height: int) -> list[list[int]]:
        """A box of the read raster as its four corners on the original page: top-left, top-right,
        bottom-right, bottom-left as read (Textract's Polygon order)."""
        corners = ((left, top), (left + width, top), (left + width, top + height), (left, top + height))
        return [list(self.to_original(x, y)) for x, y in corners]

    def word(self, word: Word) -> Word:
        polygon = self.polygon(word.left, word.top, word.width, word.height)
        left, top, width, height = self._bounds(polygon)
        return replace(word, polygon=polygon, left=left, top=top, width=width, height=height)

    def line(self, line: Line) -> Line:
        polygon = self.polygon(line.left, line.top, line.width, line.height)
        left, top, width, height = self._bounds(polygon)
        return replace(line, polygon=polygon, left=left, top=top, width=width, height=height)

    def _bounds(self, polygon: list[list[int]]) -> tuple[int, int, int, int]:
        """The upright box (left, top, width, height) around a polygon, kept on the page."""
        xs = [min(max(p[0], 0), self.original[0]) for p in polygon]
        ys = [min(max(p[1], 0), self.original[1]) for p in polygon]
        return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


def needs_pixels(analysis: PageAnalysis, turn: int, skew: float, clean_up: bool) -> bool:
    """Whether tesseract must be given a rewritten raster rather than the page's own file."""
    return (turn != 0 or abs(skew) >= MIN_SKEW or analysis.coloured_ink or analysis.uneven_background
            or clean_up)


def straightened(path: Path, dpi: int, analysis: PageAnalysis, turn: int, skew: float, clean_up: bool,
                 out: Path) -> tuple[Path, Straightening]:
    """The raster at `path` made ready for tesseract at `out` (an uncompressed grey TIFF): coloured ink kept
    dark, an uneven background evened out, `clean_up`'s filter applied, turned clockwise by `turn` degrees
    and its lean of `skew` degrees taken out."""
    with Image.open(path) as image:
        size = image.size
        grey = _grey(image, analysis.coloured_ink)
    if analysis.uneven_background:
        grey = _evened(grey)
    if clean_up:
        grey = ImageOps.autocontrast(grey.filter(ImageFilter.MedianFilter(3)))
    angle = -float(turn) - (skew if abs(skew) >= MIN_SKEW else 0.0)
    if angle:
        # Bicubic keeps strokes sharp; the corners the turn uncovers are paper, not ink.
        grey = grey.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    grey.save(out, format="TIFF", dpi=(dpi, dpi), compression="raw")
    return out, Straightening(angle, size, grey.size)


def _grey(image: Image.Image, coloured: bool) -> Image.Image:
    """Grey for tesseract; with coloured ink, each pixel's darkest channel, so yellow or light blue
    text on white stays dark (a luminance conversion turns pure yellow almost white)."""
    if not coloured:
        return image.convert("L") if image.mode != "L" else image.copy()
    rgb = np.asarray(image.convert("RGB"))
    return Image.fromarray(rgb.min(axis=2))


def _evened(grey: Image.Image) -> Image.Image:
    """Each pixel divided by the paper's lightness around it: a grey sheet on a white scanner bed, or a
    shadow across a photo, becomes white paper with dark ink, which tesseract's global threshold needs."""
    small = grey.reduce(8) if min(grey.size) >= 64 else grey
    arr = np.asarray(small, dtype=np.uint8)
    h, w = arr.shape
    rows, cols = max(1, h // 4), max(1, w // 4)
    cells = arr[: rows * 4, : cols * 4].reshape(rows, 4, cols, 4).max(axis=(1, 3))
    paper = Image.fromarray(cells).filter(ImageFilter.GaussianBlur(1.5)).resize(grey.size, Image.Resampling.BILINEAR)
    background = np.maximum(np.asarray(paper, dtype=np.float32), 1.0)
    evened = np.asarray(grey, dtype=np.float32) * (255.0 / background)
    return Image.fromarray(evened.clip(0, 255).astype(np.uint8))
