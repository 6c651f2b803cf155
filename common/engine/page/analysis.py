"""A page raster looked at before OCR, at about 100 DPI: where its ink is, its skew, colour and background.

One small grey copy of the page answers every question asked before and after tesseract: how far the
lines are turned (a projection profile swept over angles, as leptonica's skew finder does), whether the
lines run across or down the page (sideways), whether coloured ink would vanish in a plain grey
conversion, whether the sheet lies on a lighter scanner bed, and which pixels are ink at all (so the
words tesseract found can be held against the ink it should have found).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

# The analysis copy's resolution: text lines of 8 pt and more stay apart, and a page is well under a
# megapixel, so every measure below takes milliseconds.
ANALYSIS_DPI = 100
# Skew is looked for within this many degrees either way (scans and phone photos lean 1-5 degrees;
# the design asks for at least 10).
MAX_SKEW = 15.0
COARSE_STEP = 0.5
# Ink pixels the sweep looks at, at most: a page's rows show as clearly in a sample.
MAX_POINTS = 30_000
FINE_STEP = 0.05
# A straight page's best angle scores little above its neighbours: a profile peak weaker than this
# (best over median score) is no text lines at all (a photo, a blank), and the page is left as it is.
MIN_PROFILE_CONTRAST = 1.5
# Lines running down the page must score this much higher than lines running across before a page
# counts as sideways: tables and columns give both directions some structure.
SIDEWAYS_MARGIN = 1.3
# A pixel is ink where it is this much darker than the paper around it (a share of the paper's lightness).
INK_CONTRAST = 0.35
# A grey sheet on a white scanner bed: the paper's lightness varies across the page by this much (0-255).
UNEVEN_BACKGROUND = 40
# Coloured ink: pixels whose channels differ by this much, at least this share of the ink.
COLOUR_SPREAD = 80
COLOUR_INK_SHARE = 0.02
# Cells (in analysis pixels) whose ink is this dense are pictures or solid marks, not lines of text.
CELL = 16
PICTURE_DENSITY = 0.6


@dataclass(frozen=True)
class PageAnalysis:
    """What the analysis copy shows; `ink` is kept for comparing with the recognised words afterwards."""

    scale: float  # analysis pixels per raster pixel
    skew: float  # degrees the lines lean anticlockwise; the page is straightened by turning it by -skew
    skew_confident: bool
    sideways: bool  # lines run down the page: it needs a quarter turn
    coloured_ink: bool
    uneven_background: bool
    ink: np.ndarray  # bool mask of ink, analysis pixels, text-like cells only (pictures left out)

    def skew_after_turn(self, turn: int) -> float:
        """The lean of the lines once the page is turned clockwise by `turn` degrees (a quarter turn's
        multiple); 0 when no lines stand out."""
        if not turn % 360:
            return self.skew if self.skew_confident else 0.0
        skew, contrast, _ = _skew(np.rot90(self.ink, k=-(turn // 90)))
        return skew if contrast >= MIN_PROFILE_CONTRAST else 0.0

    @property
    def ink_share(self) -> float:
        """The share of the page covered by text-like ink."""
        return float(self.ink.mean()) if self.ink.size else 0.0


def analyse(path: Path, dpi: int) -> PageAnalysis:
    """Analyse the raster at `path`, scanned at `dpi`."""
    with Image.open(path) as image:
        full_width = image.width
        factor = max(1, round(dpi / ANALYSIS_DPI))
        if image.format == "JPEG" and factor > 1:
            # libjpeg decodes straight to 1/2, 1/4 or 1/8 size: a fraction of a full decode.
            image.draft(image.mode if image.mode in ("RGB", "L") else "RGB",
                        (image.width // factor, image.height // factor))
        small = _as_rgb_or_grey(image)
        rest = max(1, round(small.width / (full_width / factor)))
        if rest > 1:
            small = small.reduce(rest)
        elif small is image:
            small = image.copy()  # decoded while the file is open
        scale = small.width / full_width
    colour = small.mode == "RGB"
    arr = np.asarray(small, dtype=np.int16)
    grey = arr.min(axis=2) if colour else arr
    background = _background(grey)
    ink = grey < background * (1 - INK_CONTRAST)
    coloured = False
    if colour and ink.any():
        spread = arr.max(axis=2) - arr.min(axis=2)
        coloured = float((spread[ink] > COLOUR_SPREAD).mean()) >= COLOUR_INK_SHARE
    uneven = int(np.percentile(background, 95)) - int(np.percentile(background, 5)) >= UNEVEN_BACKGROUND
    text_ink = _without_pictures(ink)
    skew, contrast, across = _skew(text_ink)
    _, down_contrast, down = _skew(text_ink.T)
    sideways = down_contrast >= MIN_PROFILE_CONTRAST and down > across * SIDEWAYS_MARGIN
    if sideways:
        skew, contrast = 0.0, 0.0  # measured again once the page is turned upright
    return PageAnalysis(scale=scale, skew=skew, skew_confident=contrast >= MIN_PROFILE_CONTRAST,
                        sideways=sideways, coloured_ink=coloured, uneven_background=uneven, ink=text_ink)


def _as_rgb_or_grey(image: Image.Image) -> Image.Image:
    if image.mode in ("RGB", "L"):
        return image
    if image.mode in ("P", "PA", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"):
        return image.convert("RGB")
    return image.convert("L")


def _background(grey: np.ndarray) -> np.ndarray:
    """The paper's lightness around each pixel: the lightest value of each 8x8 cell, smoothed and scaled
    back up, so text and thin rules vanish from it and a sheet lying on a lighter bed keeps its own shade."""
    h, w = grey.shape
    rows, cols = max(1, h // 8), max(1, w // 8)
    cells = grey[: rows * 8, : cols * 8].reshape(rows, 8, cols, 8).max(axis=(1, 3))
    paper = Image.fromarray(cells.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.5))
    return np.asarray(paper.resize((w, h), Image.Resampling.BILINEAR), dtype=np.int16)


def _without_pictures(ink: np.ndarray) -> np.ndarray:
    """The ink mask with dense cells (photos, solid blocks, a dark bed's edge) cleared."""
    h, w = ink.shape
    rows, cols = h // CELL, w // CELL
    if not rows or not cols:
        return ink
    cells = ink[: rows * CELL, : cols * CELL].reshape(rows, CELL, cols, CELL).mean(axis=(1, 3))
    dense = np.kron(cells > PICTURE_DENSITY, np.ones((CELL, CELL), dtype=bool))
    out = ink.copy()
    out[: rows * CELL, : cols * CELL] &= ~dense
    return out


def _profile_score(ys: np.ndarray, xs: np.ndarray, degrees: float) -> float:
    """How sharply the ink falls into rows when the page is turned by `degrees`: the sum of squared
    differences between neighbouring rows of the projection (leptonica's measure)."""
    t = np.deg2rad(degrees)
    rows = np.round(ys * np.cos(t) - xs * np.sin(t)).astype(np.int64)
    counts = np.bincount(rows - rows.min()).astype(np.float64)
    return float(np.square(np.diff(counts)).sum())


def _skew(ink: np.ndarray) -> tuple[float, float, float]:
    """(skew in degrees, best score over the median score of the sweep, best score)."""
    ys, xs = _ink_points(ink)
    if len(ys) < 200:
        return 0.0, 0.0, 0.0
    coarse = np.arange(-MAX_SKEW, MAX_SKEW + COARSE_STEP / 2, COARSE_STEP)
    scores = np.array([_profile_score(ys, xs, a) for a in coarse])
    best = float(coarse[int(scores.argmax())])
    fine = np.arange(best - COARSE_STEP, best + COARSE_STEP + FINE_STEP / 2, FINE_STEP)
    fine_scores = np.array([_profile_score(ys, xs, a) for a in fine])
    top = float(fine_scores.max())
    angle = float(fine[int(fine_scores.argmax())])
    median = float(np.median(scores)) or 1.0
    # Turning the rows by +a lines them up when the text leans by -a in image coordinates (y down):
    # anticlockwise as seen, which is PIL's positive direction.
    return round(-angle, 2), top / median, top


def _ink_points(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of the ink pixels, every n-th of them past MAX_POINTS: the profile's shape needs no more."""
    ys, xs = np.nonzero(ink)
    step = max(1, len(ys) // MAX_POINTS)
    return ys[::step].astype(np.float64), xs[::step].astype(np.float64)
