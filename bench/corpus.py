"""Pages of real prose rendered as a scanner would deliver them, with known text, and the ways scans go wrong.

The prose is found on the machine at run time, never stored in the repository: English from Debian's
licence texts (/usr/share/common-licenses), German and French from the translated manual pages Debian
ships (dpkg, apt, shadow; manpages-de and manpages-fr add many), rendered to text with `man`.
Everything is deterministic: the same machine, font and seed give the same pixels.
"""

from __future__ import annotations

import io
import os
import re
import statistics
import subprocess
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont, ImageOps

LICENCES = Path("/usr/share/common-licenses")
MANUALS = Path("/usr/share/man")
FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"),  # fonts-dejavu-core
    Path("/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf"),  # fonts-liberation
    Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"),
)
A4_INCHES = (210 / 25.4, 297 / 25.4)
MARGIN_INCHES = 1.0
POINTS = 11  # body text of a letter or a report
LINE_PITCH = 1.5  # line spacing as a multiple of the font size
LINES_PER_PAGE = 34

# Colours of text on white paper; each still reads as its colour to a person, at a luminance far above black.
INKS = {"yellow": (222, 176, 0), "light-blue": (90, 160, 230), "red": (205, 30, 35)}
KINDS = ("skew1", "skew3", "skew5", "grey-sheet", "noise", "blur", "low-contrast", "jpeg40", *INKS)

# groff's typographic characters, written back as the ASCII a typist would have typed.
_GROFF = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2212": "-", "\u00ad": None, "\u00a0": " ", "\u200b": None})


class CorpusMissing(RuntimeError):
    """What the machine lacks to make a page kind, with the Debian package that provides it."""


@dataclass(frozen=True)
class Prose:
    """Paragraphs of one language, and where they came from."""
    lang: str  # tesseract's language code
    paragraphs: list[str]
    sources: list[str] = field(default_factory=list)


def find_font(path: Path | None = None) -> Path:
    if path is not None:
        return path
    for candidate in FONTS:
        if candidate.is_file():
            return candidate
    raise CorpusMissing("no serif TrueType font found: apt-get install fonts-dejavu-core")


def load_font(dpi: int, path: Path | None = None, points: int = POINTS) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(find_font(path)), round(points * dpi / 72))


def _tidy(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text.translate(_GROFF)).split())


def licence_prose(folder: Path = LICENCES) -> Prose:
    """English paragraphs of every licence text (blank-line separated), each file once (GPL links GPL-3)."""
    files = sorted({path.resolve() for path in folder.glob("*") if path.is_file()}) if folder.is_dir() else []
    paragraphs: list[str] = []
    for path in files:
        for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
            text = _tidy(block)
            # Rules of dashes or underscores and lone headings are not prose.
            if len(text.split()) >= 8 and sum(c.isalpha() for c in text) > len(text) // 2:
                paragraphs.append(text)
    if not paragraphs:
        raise CorpusMissing(f"no licence texts in {folder}: apt-get install base-files")
    return Prose("eng", paragraphs, [p.name for p in files])


def manual_text(path: Path) -> str:
    """A manual page as plain text, unhyphenated and unjustified, one paragraph per line."""
    env = dict(os.environ, MANWIDTH="10000", LC_ALL="C.UTF-8")  # one line per paragraph, whatever the locale
    out = subprocess.run(["man", "--no-hyphenation", "--no-justification", "-E", "UTF-8", "-l", str(path)],
                         capture_output=True, env=env, timeout=60, check=False)
    return out.stdout.decode("utf-8", errors="replace")


def manual_prose(locale: str, lang: str, folder: Path = MANUALS, limit: int = 40) -> Prose:
    """Prose paragraphs of the first `limit` manual pages translated into `locale` (`de`, `fr`), in name
    order (rendering one takes ~0.1 s): body text of 12+ words ending a sentence, not option tables or
    examples (those are indented deeper)."""
    where = folder / locale
    pages = sorted(p for p in where.glob("man[1-8]/*") if p.is_file())[:limit] if where.is_dir() else []
    paragraphs: list[str] = []
    for path in pages:
        for line in manual_text(path).splitlines():
            if line.startswith("       ") and not line.startswith("        "):
                text = _tidy(line)
                if len(text.split()) >= 12 and text[-1] in ".:!?" and "/" not in text.split()[0]:
                    paragraphs.append(text)
    if not paragraphs:
        package = {"de": "manpages-de", "fr": "manpages-fr"}.get(locale, f"manpages-{locale}")
        raise CorpusMissing(f"no {locale} manual pages under {folder / locale} (or no `man`): "
                            f"apt-get install man-db {package}")
    return Prose(lang, paragraphs, [p.name for p in pages])


def prose(lang: str) -> Prose:
    """The paragraphs for a tesseract language: eng, deu or fra."""
    if lang == "eng":
        return licence_prose()
    locales = {"deu": "de", "fra": "fr"}
    if lang in locales:
        return manual_prose(locales[lang], lang)
    raise ValueError(f"no prose source for {lang}")


def wrap(paragraphs: list[str], font: ImageFont.FreeTypeFont, width: int) -> Iterator[str]:
    """Lines no wider than `width` pixels in `font`, each paragraph starting a new line."""
    for paragraph in paragraphs:
        line = ""
        for word in paragraph.split():
            trial = f"{line} {word}" if line else word
            if line and font.getlength(trial) > width:
                yield line
                line = word
            else:
                line = trial
        if line:
            yield line


def page_texts(source: Prose, dpi: int, count: int, lines: int = LINES_PER_PAGE, stride: int = 7,
               font_path: Path | None = None) -> list[str]:
    """`count` pages of `lines` lines each (newline-joined), page n being page n*stride of the whole text
    (wrapping round), so a few pages sample many documents."""
    font = load_font(dpi, font_path)
    width = round((A4_INCHES[0] - 2 * MARGIN_INCHES) * dpi)
    all_lines = list(wrap(source.paragraphs, font, width))
    total = max(1, len(all_lines) // lines)
    return ["\n".join(all_lines[(n * stride % total) * lines:(n * stride % total + 1) * lines])
            for n in range(count)]


def render_page(text: str, dpi: int = 300, font: ImageFont.FreeTypeFont | None = None) -> Image.Image:
    """An A4 page in gray: `text` (one line per line) black on white, 1-inch margins, at `dpi`."""
    font = font or load_font(dpi)
    size = (round(A4_INCHES[0] * dpi), round(A4_INCHES[1] * dpi))
    page = Image.new("L", size, 255)
    draw = ImageDraw.Draw(page)
    margin = round(MARGIN_INCHES * dpi)
    pitch = round(font.size * LINE_PITCH)
    for row, line in enumerate(text.splitlines()):
        draw.text((margin, margin + row * pitch), line, font=font, fill=0)
    page.info["dpi"] = (dpi, dpi)
    return page


def skew(image: Image.Image, degrees: float) -> Image.Image:
    """The page turned by `degrees` (counter-clockwise) about its centre, same size, corners filled with
    the paper's colour: a sheet laid crooked on the scanner. The text stays inside the 1-inch margins
    up to about 10 degrees."""
    paper = image.getpixel((0, 0))
    turned = image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=paper)
    turned.info["dpi"] = image.info.get("dpi", (300, 300))
    return turned


def _noise(image: Image.Image, seed: int, sigma: float = 28.0) -> Image.Image:
    """Gaussian sensor noise plus dust (one pixel in 256 black, one in 256 white), drawn from `seed`."""
    import random

    rng = random.Random(seed)
    normal = statistics.NormalDist(0, sigma)
    # A byte per pixel from the seeded generator, mapped through the inverse normal CDF: fast and repeatable.
    lut = [max(0, min(255, 128 + round(normal.inv_cdf((v + 0.5) / 256)))) for v in range(256)]
    gray = image.convert("L")
    grain = Image.frombytes("L", gray.size, rng.randbytes(gray.width * gray.height)).point(lut)
    out = ImageChops.add(gray, grain, scale=1.0, offset=-128)
    dust = Image.frombytes("L", gray.size, rng.randbytes(gray.width * gray.height))
    black = dust.point(lambda v: 255 if v == 0 else 0)
    white = dust.point(lambda v: 255 if v == 255 else 0)
    out.paste(0, mask=black)
    out.paste(255, mask=white)
    return out


def _grey_sheet(image: Image.Image, seed: int) -> Image.Image:
    """A sheet of grey recycled paper on a white scanner bed wider and longer than A4, laid 1 degree off."""
    dpi = image.info.get("dpi", (300, 300))[0]
    sheet = image.point(lambda v: 60 + v * 130 // 255)  # paper 190, ink 60: greyish stock, worn toner
    bed = Image.new("L", (image.width + round(0.4 * dpi), image.height + round(0.25 * dpi)), 255)
    bed.paste(sheet, (round(0.08 * dpi), round(0.1 * dpi)))
    return bed.rotate(1.0 if seed % 2 else -1.0, resample=Image.Resampling.BICUBIC, fillcolor=255)


def jpeg_bytes(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality, dpi=image.info.get("dpi", (300, 300)))
    return buf.getvalue()


def degrade(image: Image.Image, kind: str, seed: int = 0) -> Image.Image:
    """`image` as a scan of kind `kind` (one of KINDS, or "clean"); `seed` picks the noise and the skew's
    direction (odd seeds counter-clockwise), so the same arguments give the same pixels."""
    dpi = image.info.get("dpi", (300, 300))
    sign = 1 if seed % 2 else -1
    if kind == "clean":
        out = image.copy()
    elif kind in ("skew1", "skew3", "skew5"):
        out = skew(image, sign * int(kind[4:]))
    elif kind == "grey-sheet":
        out = _grey_sheet(image, seed)
    elif kind == "noise":
        out = _noise(image, seed)
    elif kind == "blur":
        out = image.filter(ImageFilter.GaussianBlur(1.6 * dpi[0] / 300))
    elif kind == "low-contrast":
        out = image.point(lambda v: 140 + v * 75 // 255)  # ink 140 on paper 215: a faded print
    elif kind == "jpeg40":
        out = Image.open(io.BytesIO(jpeg_bytes(image, 40)))
        out.load()
    elif kind in INKS:
        out = ImageOps.colorize(image.convert("L"), black=INKS[kind], white=(255, 255, 255))
    else:
        raise ValueError(f"unknown degradation {kind!r}: one of clean, {', '.join(KINDS)}")
    out.info["dpi"] = dpi
    return out
