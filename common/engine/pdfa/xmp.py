"""A PDF/A-2b file's metadata: XMP made afresh from the properties PDF/A knows, DocInfo agreeing with it.

A source's XMP may hold any schema (Photoshop's, PDF/X's pdfx, PDF/UA's pdfuaid, a producer's own), and
PDF/A-2 accepts a property only from a predefined schema or one declared by a PDF/A extension schema
(ISO 19005-2 6.6.2.3). The document's own description (title, author, subject, keywords, dates, creator
tool, producer) is kept; every other property is dropped rather than declared. That includes a PDF/UA
claim: an OCR text layer is untagged content, and nothing here checks PDF/UA. DocInfo keeps only its
standard entries (no PDF/X keys such as GTS_PDFXVersion or Trapped), fills what the XMP lacks, and is then
written from the XMP.
"""

from __future__ import annotations

import warnings
from typing import Any

import pikepdf

# DocInfo entries with an XMP equivalent (pikepdf's mapping); PDF/X's and producers' own are dropped.
_DOCINFO_KEPT = ("/Title", "/Author", "/Subject", "/Keywords", "/Creator", "/Producer", "/CreationDate",
                 "/ModDate")
# The XMP properties of the document's description that are carried over.
_XMP_KEPT = ("dc:title", "dc:creator", "dc:description", "dc:subject", "pdf:Keywords", "pdf:Producer",
             "xmp:CreateDate", "xmp:ModifyDate", "xmp:CreatorTool")
_PDFA_ID = ("pdfaid:part", "pdfaid:conformance", "pdfaid:amd", "pdfaid:rev", "pdfaid:corr")


def claim_pdfa_2b(pdf: pikepdf.Pdf) -> None:
    """The file's XMP made anew with its description and pdfaid part 2, conformance B; DocInfo to match."""
    kept = _description(pdf)
    info = pdf.docinfo
    for key in list(info.keys()):
        if key not in _DOCINFO_KEPT or not isinstance(info.get(key), pikepdf.String):
            del info[key]
    if "/Metadata" in pdf.Root:
        del pdf.Root["/Metadata"]
    with warnings.catch_warnings():
        # pikepdf warns of a DocInfo value it cannot convert (a malformed date); that entry is then dropped
        # from both, as DocInfo is written back from the XMP.
        warnings.simplefilter("ignore")
        with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
            # DocInfo fills what the XMP lacks; where both have a value the XMP's wins, as it keeps lists
            # (several authors) that DocInfo flattens.
            meta.load_from_docinfo(info)
            for key, value in kept.items():
                meta[key] = value
            meta["pdfaid:part"] = "2"
            meta["pdfaid:conformance"] = "B"


def _description(pdf: pikepdf.Pdf) -> dict[str, Any]:
    """The kept properties the source's XMP has readable values for; unreadable XMP gives none."""
    if "/Metadata" not in pdf.Root:
        return {}
    kept: dict[str, Any] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta = pdf.open_metadata()
            for key in _XMP_KEPT:
                value = meta.get(key)
                if isinstance(value, str | list | set) and value:
                    kept[key] = value
    except (ValueError, TypeError, KeyError, pikepdf.PdfError):
        return {}
    return kept


def disclaim(pdf: pikepdf.Pdf) -> bool:
    """The file's PDF/A identification removed, if it has one; True when something was removed.

    XMP that names pdfaid but cannot be edited is dropped whole: a claim that cannot be removed must not stay.
    """
    metadata = pdf.Root.get("/Metadata")
    if not isinstance(metadata, pikepdf.Stream):
        return False
    try:
        raw = metadata.read_bytes()
    except pikepdf.PdfError:
        raw = b"pdfaid"  # unreadable: treated as a claim
    if b"pdfaid" not in raw:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
                for key in _PDFA_ID:
                    if key in meta:
                        del meta[key]
        still = pdf.Root.Metadata.read_bytes()
        if b"pdfaid:part" not in still and b"pdfaid:conformance" not in still:
            return True
    except (ValueError, TypeError, KeyError, pikepdf.PdfError):
        pass  # removed whole below
    del pdf.Root["/Metadata"]
    return True
