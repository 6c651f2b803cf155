"""tesseract's hOCR: a page's words, boxes and confidences read back, and pages merged into one document.

hOCR carries what image_to_data's TSV does (every word with its box and confidence, grouped in lines
and paragraphs), and tesseract writes it in the same run as the PDF: one renderer fewer per page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path

from common.models import Line, Word

# Elements tesseract writes for a line of text: plain lines and the kinds its layout analysis names.
_LINE_CLASSES = frozenset({"ocr_line", "ocr_textfloat", "ocr_header", "ocr_caption"})
_BBOX = re.compile(r"bbox (\d+) (\d+) (\d+) (\d+)")
_WCONF = re.compile(r"x_wconf (\d+(?:\.\d+)?)")
_SCAN_RES = re.compile(r"scan_res (\d+) \d+")
_BODY = re.compile(rb"<body>(.*)</body>", re.DOTALL)
# The page's title names tesseract's input file, a temporary path of the worker: not for clients.
_IMAGE_NAME = re.compile(rb"image \"[^\"]*\"; ")


@dataclass(frozen=True)
class HocrPage:
    text: str  # lines in reading order, a blank line between paragraphs
    confidence: float | None  # mean word confidence, None for a page without words
    words: list[Word]
    lines: list[Line] = field(default_factory=list)  # every line with words, in reading order
    word_lines: list[int] = field(default_factory=list)  # the index in `lines` of each of `words`
    scan_res: int | None = None  # the resolution tesseract took the image to have (hOCR's scan_res)
    size: tuple[int, int] | None = None  # the page image's width and height; None: tesseract read no image

    def words_in_lines(self) -> list[Word]:
        """The words, each carrying the index of its line."""
        return [replace(word, line=line) for word, line in zip(self.words, self.word_lines)]


@dataclass
class _Line:
    block: int
    paragraph: int
    box: tuple[int, int, int, int] | None
    words: list[Word] = field(default_factory=list)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[_Line] = []
        self.scan_res: int | None = None
        self.size: tuple[int, int] | None = None
        self._block = self._paragraph = -1
        self._open: list[str] = []  # the class of each element still open
        self._word: tuple[str, list[str]] | None = None  # title and text parts of the word being read

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        kind = attributes.get("class") or ""
        title = attributes.get("title") or ""
        self._open.append(kind)
        if kind == "ocr_page":
            res = _SCAN_RES.search(title)
            self.scan_res = int(res.group(1)) if res else None
            box = _BBOX.search(title)
            self.size = (int(box.group(3)), int(box.group(4))) if box else None
        elif kind == "ocr_carea":
            self._block += 1
        elif kind == "ocr_par" or (kind in _LINE_CLASSES and self._paragraph < 0):
            self._paragraph += 1
        if kind in _LINE_CLASSES:
            box = _BBOX.search(title)
            self.lines.append(_Line(max(0, self._block), self._paragraph,
                                    tuple(int(v) for v in box.groups()) if box else None))  # type: ignore[arg-type]
        elif kind == "ocrx_word":
            self._word = (title, [])

    def handle_endtag(self, tag: str) -> None:
        kind = self._open.pop() if self._open else ""
        if kind == "ocrx_word" and self._word is not None:
            title, parts = self._word
            self._word = None
            text = "".join(parts).strip()
            box, conf = _BBOX.search(title), _WCONF.search(title)
            if text and box and self.lines:
                x0, y0, x1, y1 = (int(v) for v in box.groups())
                self.lines[-1].words.append(Word(text=text, confidence=float(conf.group(1)) if conf else -1.0,
                                                 left=x0, top=y0, width=x1 - x0, height=y1 - y0))

    def handle_data(self, data: str) -> None:
        if self._word is not None:
            self._word[1].append(data)


def parse(raw: bytes) -> HocrPage:
    """One page's hOCR as text in reading order, mean confidence, words with their boxes, and lines."""
    reader = _Reader()
    reader.feed(raw.decode("utf-8", errors="replace"))
    reader.close()
    read = [line for line in reader.lines if line.words]
    blocks: list[list[str]] = []
    last_paragraph = None
    for line in read:
        if line.paragraph != last_paragraph:
            blocks.append([])
            last_paragraph = line.paragraph
        blocks[-1].append(" ".join(w.text for w in line.words))
    words = [w for line in read for w in line.words]
    confidences = [w.confidence for w in words if w.confidence is not None and w.confidence >= 0]
    return HocrPage(
        text="\n\n".join("\n".join(block) for block in blocks),
        confidence=round(sum(confidences) / len(confidences), 2) if confidences else None,
        words=words,
        lines=[_line_of(line) for line in read],
        word_lines=[index for index, line in enumerate(read) for _ in line.words],
        scan_res=reader.scan_res,
        size=reader.size,
    )


def _line_of(line: _Line) -> Line:
    confidences = [w.confidence for w in line.words if w.confidence is not None and w.confidence >= 0]
    if line.box is not None:
        x0, y0, x1, y1 = line.box
    else:  # a line without its own box spans its words
        x0, y0 = min(w.left for w in line.words), min(w.top for w in line.words)
        x1, y1 = max(w.left + w.width for w in line.words), max(w.top + w.height for w in line.words)
    return Line(text=" ".join(w.text for w in line.words),
                confidence=round(sum(confidences) / len(confidences), 2) if confidences else None,
                left=x0, top=y0, width=x1 - x0, height=y1 - y0, block=line.block, paragraph=line.paragraph)


def merge(pages: list[Path], out: Path) -> Path:
    """One hOCR document: the first page's head, then every page's ocr_page block in order.

    Written a page at a time, so a long document's hOCR is never held whole.
    """
    with out.open("wb") as merged:
        for index, page in enumerate(pages):
            part = page.read_bytes()
            if index == 0:
                merged.write(part.split(b"<body>", 1)[0] + b"<body>")
            body = _BODY.search(part)
            if body:
                merged.write(_IMAGE_NAME.sub(b"", body.group(1)))
        merged.write(b"</body>\n</html>\n")
    return out
