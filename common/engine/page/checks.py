"""What a read page may be missing, said as warnings: its ink held against the words found on it, and their confidence.

tesseract's confidence speaks only of the words it found: a page skewed so far that it found one word in
twenty still reads at confidence 93. The ink does not lie: ink that looks like text (pictures are left
out by the analysis) but lies outside every recognised word is text that was not read.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from common.engine.page.analysis import PageAnalysis
from common.models import ResultWarning, Word, WarningCode

# Below this share of the page, ink is specks, stamps or a page number: too little to say text was lost, and a
# page without words is then empty (a blank page, or one scanned too light).
MIN_INK_SHARE = 0.002
# The share of the text-like ink that must lie in recognised words; under it, text was likely missed.
# Rules and drawings put some ink outside words on a fully read page; a page read at word recall 0.8
# leaves about a fifth of its ink outside.
MIN_INK_IN_WORDS = 0.8
# Mean word confidence under this: the words are there, but many are likely misread.
LOW_MEAN_CONFIDENCE = 60.0
# Analysis pixels around a word's box that still count as its ink (ascenders, accents, underlines).
WORD_MARGIN = 2


def warnings_for(analysis: PageAnalysis | None, words: list[Word], confidence: float | None) -> list[ResultWarning]:
    """The warnings of an OCRed page, from its analysis and the words (in the original page's pixels)."""
    found: list[ResultWarning] = []
    ink_share = analysis.ink_share if analysis is not None else None
    if not words:
        if ink_share is not None and ink_share >= MIN_INK_SHARE:
            found.append(ResultWarning(WarningCode.INK_WITHOUT_TEXT,
                                       f"the page has ink on {ink_share:.1%} of it but no word was recognised"))
        else:
            found.append(ResultWarning(WarningCode.EMPTY_PAGE, "no text was found on the page"))
        return found
    if analysis is not None and ink_share is not None and ink_share >= MIN_INK_SHARE:
        inside = ink_in_words(analysis, words)
        if inside < MIN_INK_IN_WORDS:
            found.append(ResultWarning(
                WarningCode.INK_WITHOUT_TEXT,
                f"only {inside:.0%} of the page's text-like ink lies in recognised words: some text was "
                f"likely not read (under {MIN_INK_IN_WORDS:.0%} is warned of)"))
    if confidence is not None and confidence < LOW_MEAN_CONFIDENCE:
        found.append(ResultWarning(
            WarningCode.LOW_CONFIDENCE,
            f"the words were read with a mean confidence of {confidence:.0f} (under {LOW_MEAN_CONFIDENCE:.0f} "
            "is warned of): many may be misread"))
    return found


def ink_in_words(analysis: PageAnalysis, words: list[Word]) -> float:
    """The share of the page's text-like ink inside the recognised words' outlines."""
    ink = analysis.ink
    total = int(ink.sum())
    if not total:
        return 1.0
    mask = Image.new("1", (ink.shape[1], ink.shape[0]), 0)
    draw = ImageDraw.Draw(mask)
    s = analysis.scale
    for word in words:
        corners = word.polygon or [[word.left, word.top], [word.left + word.width, word.top],
                                   [word.left + word.width, word.top + word.height], [word.left, word.top + word.height]]
        draw.polygon([(x * s, y * s) for x, y in corners], fill=1, outline=1)
    grown = mask.convert("L").filter(ImageFilter.MaxFilter(2 * WORD_MARGIN + 1))
    inside = np.asarray(grown) > 0
    return float((ink & inside).sum()) / total
