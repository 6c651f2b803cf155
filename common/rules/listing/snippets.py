"""Search snippets: a short window of a document's text around the first searched word, as the collation matches.

A searched word is given as its stems (params.stems_of): a hit is a word of the text that starts with one."""

from __future__ import annotations

import re
import unicodedata

SNIPPET_CHARS = 160
SNIPPET_FOLD_CHARS = 200_000


def _folded(text: str) -> tuple[str, list[int]]:
    """Text without case and accents (as utf8mb4_unicode_ci compares), with each folded char's source index."""
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        plain = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)).casefold()
        chars.append(plain)
        origin.extend([index] * len(plain))
    return "".join(chars), origin


def _first_hit(text: str, words: tuple[str, ...]) -> int | None:
    """Index of the first word starting with any of `words`, ignoring case and (for non-ASCII text) accents."""
    found = re.search(rf"(?<!\w)(?:{'|'.join(map(re.escape, words))})", text, re.IGNORECASE)
    if found:
        return found.start()
    if text.isascii():
        return None
    # Accent folding walks the text char by char in Python: bounded, as OCR texts can run to megabytes.
    head = text[:SNIPPET_FOLD_CHARS]
    folded, origin = _folded(head)
    pattern = "|".join(re.escape(_folded(word)[0]) for word in words)
    found = re.search(rf"(?<!\w)(?:{pattern})", folded)
    return origin[found.start()] if found else None


def snippet_of(text: str, words: tuple[str, ...], width: int = SNIPPET_CHARS) -> str:
    """About `width` characters around the first word starting with any of `words` (stems), whitespace
    collapsed, cut at spaces."""
    text = " ".join(text.split())
    # No hit in Python's view (the server's tokenizer differs at the edges): show the beginning.
    hit = _first_hit(text, words) or 0
    start = max(0, min(hit - width // 3, len(text) - width))
    end = min(len(text), start + width)
    if start > 0 and text[start - 1] != " ":  # do not open on half a word
        space = text.find(" ", start, hit)
        start = space + 1 if space != -1 else start
    if end < len(text) and text[end] != " ":
        space = text.rfind(" ", hit, end)
        end = space if space > hit else end
    return ("…" if start > 0 else "") + text[start:end].strip() + ("…" if end < len(text) else "")


def contains_words(text: str, stems: tuple[tuple[str, ...], ...]) -> bool:
    """Whether, for every searched word, a word of the text starts with one of its stems, as the snippet finds
    them (case and accents folded)."""
    return all(_first_hit(text, group) is not None for group in stems)
