"""Whether a PDF page's text layer is text a reader would see: in the requested languages' scripts, not symbols.

A broken font mapping decodes to code points of another script (ASCII read as UTF-16 gives CJK, e.g.
`䴀甀氀琀`), and a Type 3 font without a mapping to punctuation and digits (`"7+%-`); both pass a count
of letters or digits, so the layer is judged by what its characters are, in one pass over the text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from common.engine.language.installed import AUTO, installed_languages

# Fewer letters and digits than this: a scanned page with stray characters (page numbers, stamps), not
# a text layer at all, and no rejection to report.
MIN_TEXT_LAYER_CHARS = 20
# Share of the layer's letters that must be in a script of the requested languages (or Latin).
MIN_SCRIPT_SHARE = 0.7
# Share of the layer's visible characters that must be letters or digits; prose and tables are far above.
MIN_ALNUM_SHARE = 0.5

# Scripts by the first word of the Unicode character name, for traineddata that is not in Latin script.
# Latin is always accepted besides: numbers, names and addresses appear in it in documents of any language.
_SCRIPTS: dict[str, frozenset[str]] = {
    **dict.fromkeys(("rus", "ukr", "bel", "bul", "srp", "mkd", "kaz", "kir", "tgk", "mon", "uzb_cyrl"),
                    frozenset({"CYRILLIC"})),
    "ell": frozenset({"GREEK"}), "grc": frozenset({"GREEK"}),
    **dict.fromkeys(("ara", "fas", "urd", "pus", "snd", "uig"), frozenset({"ARABIC"})),
    **dict.fromkeys(("heb", "yid"), frozenset({"HEBREW"})),
    **dict.fromkeys(("chi_sim", "chi_tra", "chi_sim_vert", "chi_tra_vert"), frozenset({"CJK"})),
    **dict.fromkeys(("jpn", "jpn_vert"), frozenset({"CJK", "HIRAGANA", "KATAKANA"})),
    **dict.fromkeys(("kor", "kor_vert"), frozenset({"HANGUL", "CJK"})),
    **dict.fromkeys(("hin", "mar", "nep", "san"), frozenset({"DEVANAGARI"})),
    "ben": frozenset({"BENGALI"}), "asm": frozenset({"BENGALI"}), "tha": frozenset({"THAI"}),
    "tam": frozenset({"TAMIL"}), "tel": frozenset({"TELUGU"}), "kan": frozenset({"KANNADA"}),
    "mal": frozenset({"MALAYALAM"}), "guj": frozenset({"GUJARATI"}), "pan": frozenset({"GURMUKHI"}),
    "kat": frozenset({"GEORGIAN"}), "hye": frozenset({"ARMENIAN"}), "amh": frozenset({"ETHIOPIC"}),
    "khm": frozenset({"KHMER"}), "lao": frozenset({"LAO"}), "mya": frozenset({"MYANMAR"}),
    "sin": frozenset({"SINHALA"}), "bod": frozenset({"TIBETAN"}), "div": frozenset({"THAANA"}),
}
# A run of one repeated mark (dot leaders, rules drawn with dashes or underscores) is layout, not text.
_RULES = re.compile(r"([^\w\s])\1{2,}")
# Counted with regular expressions, not a Python loop per character: a page's layer is judged in well under
# a millisecond, and only letters outside ASCII are looked up one by one.
_LETTER = re.compile(r"[^\W\d_]")
_DIGIT = re.compile(r"\d")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
_OTHER_LETTER = re.compile(r"[^\W\d_A-Za-z]")


@dataclass(frozen=True)
class LayerVerdict:
    usable: bool
    reason: str | None = None  # why a layer with text was refused; None when there was no layer to speak of


def scripts_of(lang: str) -> frozenset[str] | None:
    """The scripts `eng+rus` is written in; None when a part is not known here (then any script is accepted).

    `auto` names no language yet: a layer may be in the script of any installed language (the page could be
    read in it), so mojibake in a script nothing here reads (CJK from a byte-swapped font) is still refused.
    """
    scripts = {"LATIN"}
    parts = sorted(installed_languages()) if lang == AUTO else lang.split("+")
    for part in parts:
        if part.startswith("script/"):
            return None
        scripts |= _SCRIPTS.get(part, frozenset())
    return frozenset(scripts)


@lru_cache(maxsize=4096)
def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else ""


def judge(text: str, lang: str) -> LayerVerdict:
    """Usable when the layer has enough letters or digits, mostly letters or digits, in the languages' scripts."""
    visible = "".join(_RULES.sub("", text).split())
    letters = len(_LETTER.findall(visible))
    digits = len(_DIGIT.findall(visible))
    if letters + digits < MIN_TEXT_LAYER_CHARS:
        if len(visible) >= MIN_TEXT_LAYER_CHARS:
            return LayerVerdict(False, f"only {letters + digits} of its {len(visible)} characters are "
                                       "letters or digits")
        return LayerVerdict(False)
    share = (letters + digits) / len(visible)
    if share < MIN_ALNUM_SHARE:
        return LayerVerdict(False, f"only {share:.0%} of its characters are letters or digits")
    allowed = scripts_of(lang)
    if allowed is not None and letters:
        inside = len(_ASCII_LETTER.findall(visible)) + sum(_script(ch) in allowed
                                                           for ch in _OTHER_LETTER.findall(visible))
        if inside / letters < MIN_SCRIPT_SHARE:
            return LayerVerdict(False, f"{1 - inside / letters:.0%} of its letters are outside the scripts "
                                       f"of {_named(lang)} ({', '.join(sorted(s.title() for s in allowed))})")
        if inside + digits < MIN_TEXT_LAYER_CHARS:
            return LayerVerdict(False, f"only {inside + digits} of its letters or digits are in the scripts of "
                                       f"{_named(lang)}")
    return LayerVerdict(True)


def _named(lang: str) -> str:
    """How a verdict names the languages a layer was held against."""
    return "the installed languages (lang=auto)" if lang == AUTO else lang
