"""What a PDF/A request came to: made PDF/A-2b, or left a plain PDF with a stable code and the reason.

Kept apart from pikepdf so that the rules recording a job's outputs can name it without loading PDF code.
"""

from __future__ import annotations

from dataclasses import dataclass

# The codes a PDF/A request can end with when the searchable PDF stays plain (docs/openapi.yaml, PdfaResult).
ENCRYPTED = "pdfa_encrypted"
FORBIDDEN_CONTENT = "pdfa_forbidden_content"
ANNOTATION_APPEARANCE = "pdfa_annotation_appearance"
FONT_NOT_EMBEDDED = "pdfa_font_not_embedded"
CMYK_COLOUR = "pdfa_cmyk_colour"
UNREADABLE = "pdfa_unreadable"
CODES = (ENCRYPTED, FORBIDDEN_CONTENT, ANNOTATION_APPEARANCE, FONT_NOT_EMBEDDED, CMYK_COLOUR, UNREADABLE)


@dataclass(frozen=True)
class PdfaResult:
    """`made`: the file now claims PDF/A-2b (and may); else `code` (one of CODES) and `reason` say why not,
    and the file claims no PDF/A conformance at all, not even one its source claimed."""

    made: bool
    code: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, bool | str | None]:
        """As a job records it and the status answer shows it (`outputs.pdfa`)."""
        return {"conformant": self.made, "code": self.code, "reason": self.reason}


MADE = PdfaResult(made=True)
