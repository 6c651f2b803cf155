"""tesseract's hOCR: a page's words, boxes and confidences read back, and pages merged into one document.

hOCR carries what image_to_data's TSV does (every word with its box and confidence, grouped in lines
and paragraphs), and tesseract writes it in the same run as the PDF: one renderer fewer per page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from common.models import Word

# Elements tesseract writes for a line of text: plain lines and the kinds its layout analysis names.
_LINE_CLASSES = frozenset({"ocr_line", "ocr_textfloat", "ocr_header", "ocr_caption"})
_BBOX = re.compile(r"bbox (\d+) (\d+) (\d+) (\d+)")
_WCONF = re.compile(r"x_wconf (\d+(?:\.\d+)?)")
_BODY = re.compile(rb"<body>(.*)</body>", re.DOTALL)
# The page's title names tesseract's input file, a temporary path of the worker: not for clients.
_IMAGE_NAME = re.compile(rb"image \"[^\"]*\"; ")


@dataclass(frozen=True)
class HocrPage:
    text: str  # lines in reading order, a blank line between paragraphs
    confidence: float | None  # mean word confidence, None for a page without words
    words: list[Word]


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[list[list[Word]]] = []  # paragraphs of lines of words
        self._open: list[str] = []  # the class of each element still open
        self._word: tuple[str, list[str]] | None = None  # title and text parts of the word being read

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        kind = attributes.get("class") or ""
        self._open.append(kind)
        if kind == "ocr_par" or (kind in _LINE_CLASSES and not self.paragraphs):
            self.paragraphs.append([])
        if kind in _LINE_CLASSES:
            self.paragraphs[-1].append([])
        elif kind == "ocrx_word":
            self._word = (attributes.get("title") or "", [])

    def handle_endtag(self, tag: str) -> None:
        kind = self._open.pop() if self._open else ""
        if kind == "ocrx_word" and self._word is not None:
            title, parts = self._word
            self._word = None
            text = "".join(parts).strip()
            box, conf = _BBOX.search(title), _WCONF.search(title)
            if text and box and self.paragraphs and self.paragraphs[-1]:
                x0, y0, x1, y1 = (int(v) for v in box.groups())
                self.paragraphs[-1][-1].append(Word(text=text, confidence=float(conf.group(1)) if conf else -1.0,
                                                    left=x0, top=y0, width=x1 - x0, height=y1 - y0))

    def handle_data(self, data: str) -> None:
        if self._word is not None:
            self._word[1].append(data)


def parse(raw: bytes) -> HocrPage:
    """One page's hOCR as text in reading order, mean confidence and words with their boxes."""
    reader = _Reader()
    reader.feed(raw.decode("utf-8", errors="replace"))
    reader.close()
    blocks = ["\n".join(" ".join(w.text for w in line) for line in paragraph if line)
              for paragraph in reader.paragraphs]
    words = [w for paragraph in reader.paragraphs for line in paragraph for w in line]
    confidences = [w.confidence for w in words if w.confidence >= 0]
    return HocrPage(
        text="\n\n".join(block for block in blocks if block),
        confidence=round(sum(confidences) / len(confidences), 2) if confidences else None,
        words=words,
    )


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
