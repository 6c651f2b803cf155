"""A text-layer page's words and lines with their boxes, from poppler (`pdftotext -bbox-layout`), and its hOCR.

So a born-digital page has the same geometry as an OCRed one: boxes in pixels of the page as the engine would
render it (OCR_DPI), words in lines, lines in blocks; confidences are None, as nobody recognised the words.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from common.engine.limits import OcrLimits
from common.engine.run import run
from common.errors import CorruptDocument
from common.models import Line, Word


@dataclass(frozen=True)
class LayerLayout:
    width: int  # pixels of the page at OCR_DPI
    height: int
    dpi: int
    words: list[Word]
    lines: list[Line]


    def to_json(self) -> str:
        return json.dumps({"width": self.width, "height": self.height, "dpi": self.dpi,
                           "words": [w.to_dict() for w in self.words],
                           "lines": [line.to_dict() for line in self.lines]}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> LayerLayout:
        stored = json.loads(raw)
        return cls(width=stored["width"], height=stored["height"], dpi=stored["dpi"],
                   words=[Word(**w) for w in stored["words"]], lines=[Line(**line) for line in stored["lines"]])


# poppler writes one element a line: <page width height>, <flow>, <block ...>, <line ...>, <word ...>text</word>.
# Read with one expression per line (an HTML parser costs more than the poppler pass itself).
_ELEMENT = re.compile(r'<(page|flow|block|line|word)\b([^>]*)>(?:(.*?)</word>)?|</(page|line)>')
_ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')
# Words are nearly every line: read by one expression of their own, without the general path's dict.
_WORD = re.compile(r'<word xMin="([^"]*)" yMin="([^"]*)" xMax="([^"]*)" yMax="([^"]*)">(.*?)</word>')


class _Reader:
    """Reads poppler's XHTML a line at a time and hands on each page as it ends, so memory holds one page."""

    def __init__(self, scale: float, dpi: int, on_page: Callable[[int, LayerLayout], None]) -> None:
        self.scale = scale  # pixels per point
        self.dpi = dpi
        self.on_page = on_page
        self.number = 0
        self.size = (0, 0)
        self.words: list[Word] = []
        self.lines: list[Line] = []
        self._flow = self._block = -1
        self._line: tuple[int, int, int, int] | None = None
        self._line_words: list[Word] = []

    def _box(self, attrs: dict[str, str]) -> tuple[int, int, int, int]:
        x0, y0, x1, y1 = (float(attrs.get(k) or 0) * self.scale for k in ("xMin", "yMin", "xMax", "yMax"))
        return round(x0), round(y0), round(x1 - x0), round(y1 - y0)

    def feed(self, line: str) -> None:
        word = _WORD.search(line)
        if word is not None:
            x0, y0, x1, y1 = (float(v) * self.scale for v in word.groups()[:4])
            text = word.group(5).strip()
            if text:
                self._line_words.append(Word(text=html.unescape(text), confidence=None, left=round(x0),
                                             top=round(y0), width=round(x1 - x0), height=round(y1 - y0),
                                             line=len(self.lines)))
            return
        for element in _ELEMENT.finditer(line):
            tag, attributes, text, closing = element.groups()
            if closing:
                self._close(closing)
                continue
            found = dict(_ATTRIBUTE.findall(attributes))
            if tag == "page":
                self.number += 1
                self.words, self.lines, self._flow, self._block = [], [], -1, -1
                self.size = (round(float(found.get("width") or 0) * self.scale),
                             round(float(found.get("height") or 0) * self.scale))
            elif tag == "flow":
                self._flow += 1
            elif tag == "block":
                self._block += 1
            elif tag == "line":
                self._line, self._line_words = self._box(found), []
            elif tag == "word" and text and text.strip():
                left, top, width, height = self._box(found)
                self._line_words.append(Word(text=html.unescape(text.strip()), confidence=None, left=left,
                                             top=top, width=width, height=height, line=len(self.lines)))

    def _close(self, tag: str) -> None:
        if tag == "page":
            self.on_page(self.number, LayerLayout(width=self.size[0], height=self.size[1], dpi=self.dpi,
                                                  words=self.words, lines=self.lines))
        elif tag == "line" and self._line is not None:
            if self._line_words:
                left, top, width, height = self._line
                self.lines.append(Line(text=" ".join(w.text for w in self._line_words), confidence=None,
                                       left=left, top=top, width=width, height=height,
                                       block=max(0, self._flow), paragraph=max(0, self._block)))
                self.words.extend(self._line_words)
            self._line = None


def place_layers(path: Path, numbers: Collection[int], count: int, limits: OcrLimits,
                 workdir: Path) -> dict[int, Path]:
    """The layout of each text-layer page in `numbers`, as a file in `workdir` (LayerLayout.from_json reads it).

    One poppler pass over the document, as for the text (a run per page costs a process start and a parse
    of the whole PDF each: a third of the born-digital throughput), written to a file and read a chunk at a
    time, so neither the output nor the words of every page are ever held whole.
    """
    wanted = set(numbers)
    out = workdir / "layers.html"
    placed: dict[int, Path] = {}

    def keep(number: int, layout: LayerLayout) -> None:
        if number in wanted:
            placed[number] = workdir / f"page-{number:05d}.layout.json"
            placed[number].write_text(layout.to_json(), encoding="utf-8")

    try:
        run(["pdftotext", "-bbox-layout", "-enc", "UTF-8", str(path), str(out)],
            timeout=limits.whole_document_timeout(count), failure=CorruptDocument)
        reader = _Reader(limits.dpi / 72, limits.dpi, keep)
        with out.open(encoding="utf-8", errors="replace") as xhtml:
            for line in xhtml:
                reader.feed(line)
    except CorruptDocument as e:
        raise CorruptDocument(f"the PDF is damaged and its words cannot be placed ({e.message})",
                              detail=e.detail) from e
    finally:
        out.unlink(missing_ok=True)
    for number in wanted - set(placed):
        # A page poppler gave text for but no layout (never seen): words unknown, not a failed job.
        keep(number, LayerLayout(width=0, height=0, dpi=limits.dpi, words=[], lines=[]))
    return placed


def write_hocr(layout: LayerLayout, number: int, out: Path) -> Path:
    """The page as hOCR, in the shape tesseract writes (page, carea, par, line, word), without confidences."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"'
             ' "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n<html xmlns="http://www.w3.org/1999/xhtml"'
             ' xml:lang="en" lang="en">\n<head>\n<title></title>\n<meta http-equiv="Content-Type" content="text/html;'
             'charset=utf-8"/>\n<meta name="ocr-system" content="pdftotext -bbox-layout"/>\n'
             '<meta name="ocr-capabilities" content="ocr_page ocr_carea ocr_par ocr_line ocrx_word"/>\n'
             '</head>\n<body>\n',
             f"<div class='ocr_page' id='page_{number}' title='bbox 0 0 {layout.width} {layout.height}; "
             f"ppageno {number - 1}; scan_res {layout.dpi} {layout.dpi}'>\n"]
    by_line: dict[int | None, list[Word]] = {}
    for word in layout.words:
        by_line.setdefault(word.line, []).append(word)
    open_block = open_par = None
    for index, line in enumerate(layout.lines):
        if line.paragraph != open_par and open_par is not None:
            parts.append("</p>\n")
        if line.block != open_block:
            if open_block is not None:
                parts.append("</div>\n")
            parts.append(f"<div class='ocr_carea' id='block_{number}_{line.block + 1}'>\n")
            open_block, open_par = line.block, None
        if line.paragraph != open_par:
            parts.append(f"<p class='ocr_par' id='par_{number}_{line.paragraph + 1}'>\n")
            open_par = line.paragraph
        parts.append(f"<span class='ocr_line' id='line_{number}_{index + 1}' title='bbox {_bbox(line)}'>")
        parts.extend(f"<span class='ocrx_word' title='bbox {_bbox(w)}'>{html.escape(w.text)}</span> "
                     for w in by_line.get(index, []))
        parts.append("</span>\n")
    if open_par is not None:
        parts.append("</p>\n")
    if open_block is not None:
        parts.append("</div>\n")
    parts.append("</div>\n</body>\n</html>\n")
    out.write_text("".join(parts), encoding="utf-8")
    return out


def _bbox(item: Word | Line) -> str:
    return f"{item.left} {item.top} {item.left + item.width} {item.top + item.height}"
