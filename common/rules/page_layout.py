"""A stored page's words and lines as status answers them (pixel and normalised boxes); which pages an answer holds.

Normalised boxes are Textract's BoundingBox: left, top, width and height as fractions (0..1) of the page,
so a client places them on any rendering of the page without knowing the raster's size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common.errors import BadRequest

# Pages per answer: with words or lines a page is tens of kilobytes, so a 200-page job is read in parts.
PAGES_PER_ANSWER = 100
PAGES_PER_ANSWER_WITH_LAYOUT = 20


@dataclass(frozen=True)
class PageLayout:
    words: list[dict[str, Any]]
    lines: list[dict[str, Any]]
    text_layer_rejected: str | None
    skew: float = 0.0
    languages: list[str] = field(default_factory=list)


def stored_layout(raw: str | None) -> PageLayout:
    """The pages.words column: a JSON object (words, lines, layer verdict, skew, detected languages), or the
    older list of words alone."""
    if not raw:
        return PageLayout([], [], None)
    stored = json.loads(raw)
    if isinstance(stored, list):
        return PageLayout(stored, [], None)
    return PageLayout(list(stored.get("words") or []), list(stored.get("lines") or []),
                      stored.get("text_layer_rejected"), float(stored.get("skew") or 0.0),
                      list(stored.get("languages") or []))


def with_box(item: Mapping[str, Any], width: int | None, height: int | None) -> dict[str, Any]:
    """The item with `box`, its pixel box as fractions of the page (absent when the page size is unknown)."""
    out = dict(item)
    if width and height:
        out["box"] = {"left": round(item["left"] / width, 6), "top": round(item["top"] / height, 6),
                      "width": round(item["width"] / width, 6), "height": round(item["height"] / height, 6)}
    return out


@dataclass(frozen=True)
class PageRange:
    first: int
    last: int  # inclusive

    def next_from(self, page_count: int | None) -> int | None:
        """Where the next answer starts, or None when this one reaches the last page."""
        return self.last + 1 if page_count is not None and self.last < page_count else None


def page_range(args: Mapping[str, str], with_layout: bool) -> PageRange:
    """`page_from` (default 1) and `page_to` (default: as many as one answer holds); a span over that is a 400."""
    size = PAGES_PER_ANSWER_WITH_LAYOUT if with_layout else PAGES_PER_ANSWER
    first = _page_number(args, "page_from", 1)
    last = _page_number(args, "page_to", first + size - 1)
    if last < first:
        raise BadRequest(f"page_to ({last}) is before page_from ({first})")
    if last - first + 1 > size:
        raise BadRequest(f"one answer holds at most {size} pages{' with words or lines' if with_layout else ''}; "
                         f"asked for {last - first + 1} (page_from={first}, page_to={last})")
    return PageRange(first, last)


def _page_number(args: Mapping[str, str], name: str, default: int) -> int:
    value = args.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise BadRequest(f"{name} must be a page number (1 or more); got {value!r}")
    return number
