"""Which OCR languages are installed: the one check upload and re-process need, without loading the engine."""

from __future__ import annotations

from functools import lru_cache

from common.engine.run import run
from common.errors import InvalidLanguage
from common.models import MAX_LANG_CHARS


@lru_cache(maxsize=1)
def installed_languages() -> frozenset[str]:
    """Traineddata tesseract can load here; 'osd' is orientation data, not a language to read."""
    listing = run(["tesseract", "--list-langs"], timeout=30).decode(errors="replace").splitlines()
    # The first line names the tessdata folder ("List of available languages in ..."); one name per line after.
    return frozenset(line.strip() for line in listing[1:] if line.strip() and line.strip() != "osd")


def validate_lang(lang: str) -> str:
    """`eng` or `deu+eng`: each part must be installed, else a 400 that lists what is.

    No longer than the job's column either, so a long list of installed names is a 400, not a failed insert.
    """
    if len(lang) > MAX_LANG_CHARS:
        raise InvalidLanguage(f"the language has {len(lang)} characters; the limit is {MAX_LANG_CHARS}")
    parts = [p for p in lang.split("+") if p]
    available = installed_languages()
    unknown = [p for p in parts if p not in available]
    if not parts or unknown:
        raise InvalidLanguage(
            f"language {lang!r} is not installed; available: {', '.join(sorted(available))}"
        )
    return "+".join(parts)
