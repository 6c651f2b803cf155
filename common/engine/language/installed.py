"""Which OCR languages are installed: the one check upload and re-process need, without loading the engine."""

from __future__ import annotations

from functools import lru_cache

from common.engine.run import run
from common.errors import InvalidLanguage
from common.models import MAX_LANG_CHARS

# The language a request may name instead of traineddata: the engine reads the page, identifies its language
# (common/engine/language/identify.py) and reads it again in that language when it is installed and not the first.
AUTO = "auto"


@lru_cache(maxsize=1)
def installed_languages() -> frozenset[str]:
    """Traineddata tesseract can load here; 'osd' is orientation data, not a language to read."""
    listing = run(["tesseract", "--list-langs"], timeout=30).decode(errors="replace").splitlines()
    # The first line names the tessdata folder ("List of available languages in ..."); one name per line after.
    return frozenset(line.strip() for line in listing[1:] if line.strip() and line.strip() != "osd")


def validate_lang(lang: str) -> str:
    """`eng`, `deu+eng` or `auto`: each part must be installed, else a 400 that lists what is.

    No longer than the job's column either, so a long list of installed names is a 400, not a failed insert.
    `auto` passes as it is (the engine resolves it per page) and stands alone: `auto+deu` would mean nothing.
    """
    if lang == AUTO:
        return AUTO
    if len(lang) > MAX_LANG_CHARS:
        raise InvalidLanguage(f"the language has {len(lang)} characters; the limit is {MAX_LANG_CHARS}")
    parts = [p for p in lang.split("+") if p]
    available = installed_languages()
    unknown = [p for p in parts if p not in available]
    if AUTO in parts:
        raise InvalidLanguage(f"language {lang!r}: {AUTO!r} cannot be combined with other languages")
    if not parts or unknown:
        raise InvalidLanguage(
            f"language {lang!r} is not installed; available: {AUTO} or {', '.join(sorted(available))}"
        )
    return "+".join(parts)
