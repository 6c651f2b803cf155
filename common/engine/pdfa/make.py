"""The searchable PDF made PDF/A-2b in place, or left a plain PDF that says so: never a claim it lacks.

Without Ghostscript here, nothing is redrawn or re-encoded. First the rules that cannot be mended in place
are checked (pdfa_rules: a font not embedded, CMYK colour, JavaScript...); a document that breaks one stays
plain, loses any PDF/A identification its source carried, and the result names the rule with a stable code.
Otherwise what can be mended is (pdfa_mend: /Interpolate, PDF/X and Photoshop leftovers...), one sRGB output
intent replaces any other (a PDF/X one included), and the XMP is made anew with pdfaid (pdfa_xmp). The tests
have veraPDF judge every result (local-stack/verapdf).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pikepdf
from PIL import ImageCms

from common.engine.pdfa.mend import mend
from common.engine.pdfa.result import MADE, UNREADABLE, PdfaResult
from common.engine.pdfa.rules import obstacle
from common.engine.pdfa.xmp import claim_pdfa_2b, disclaim
from common.errors import AssemblyFailed
from common.logging import get_logger

log = get_logger()

# PDF/A-2 is based on PDF 1.7 (ISO 19005-2 6.1.2): a later header is written as 1.7.
_LAST_VERSION = "1.7"


@lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """littlecms's built-in sRGB profile (a display-class RGB ICC profile), as the output intent's destination."""
    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def archival(path: Path) -> PdfaResult:
    """The searchable PDF at `path` made PDF/A-2b where it can be; one that cannot be stays plain, and the
    result (also logged) says why."""
    result = make_pdfa(path)
    if result.made:
        log.info("pdfa.made")
    else:
        log.warning("pdfa.not_made", code=result.code, reason=result.reason)
    return result


def make_pdfa(path: Path) -> PdfaResult:
    """Turn the PDF at `path` into PDF/A-2b in place; or leave it plain, without any PDF/A claim, and say why."""
    try:
        with pikepdf.open(path, allow_overwriting_input=True) as pdf:
            found = obstacle(pdf)
            if found is not None:
                if disclaim(pdf):
                    pdf.save(path)
                return PdfaResult(made=False, code=found.code, reason=found.reason)
            mend(pdf)
            _add_output_intent(pdf)
            claim_pdfa_2b(pdf)
            later = pdf.pdf_version > _LAST_VERSION
            # qpdf writes the trailer /ID and the binary comment after the header, both required.
            pdf.save(path, fix_metadata_version=True, force_version=_LAST_VERSION if later else "")
    except (pikepdf.PdfError, ValueError, TypeError, AttributeError) as e:
        # A malformed object (pikepdf raises TypeError on a number that is a name...) is as unreadable.
        # The save replaces the file only once written whole: `path` is still the PDF as it came.
        log.warning("pdfa.unreadable", error=str(e))
        disclaim_file(path)
        return PdfaResult(made=False, code=UNREADABLE, reason="the PDF could not be read or written as PDF/A")
    return MADE


def disclaim_file(path: Path) -> bool:
    """The PDF at `path` without any PDF/A identification (a plain output whose source claimed one): True when
    one was removed. A PDF that cannot be read for it, and names pdfaid somewhere, fails the assembly rather
    than keep a claim unchecked."""
    try:
        with pikepdf.open(path, allow_overwriting_input=True) as pdf:
            if not disclaim(pdf):
                return False
            pdf.save(path)
    except (pikepdf.PdfError, ValueError, TypeError, AttributeError) as e:
        if b"pdfaid" not in path.read_bytes():
            log.warning("pdfa.claim_unchecked", error=str(e))  # nothing to remove
            return False
        raise AssemblyFailed("the searchable PDF could not be checked for a PDF/A claim", detail=str(e)) from e
    log.info("pdfa.claim_removed")
    return True


def _add_output_intent(pdf: pikepdf.Pdf) -> None:
    """One sRGB output intent, replacing any the source had: PDF/A-2 wants every intent to share one profile
    (6.2.3), and a PDF/X intent's press profile does not describe the RGB the page uses."""
    profile = pikepdf.Stream(pdf, srgb_profile(), N=3)
    intent = pikepdf.Dictionary(Type=pikepdf.Name.OutputIntent, S=pikepdf.Name.GTS_PDFA1,
                                OutputConditionIdentifier=pikepdf.String("sRGB IEC61966-2.1"),
                                Info=pikepdf.String("sRGB IEC61966-2.1"), DestOutputProfile=profile)
    pdf.Root.OutputIntents = pikepdf.Array([pdf.make_indirect(intent)])
