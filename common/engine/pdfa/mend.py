"""What keeps a document from PDF/A-2b but can be mended in place, without redrawing a page.

Each mend removes what PDF/A forbids and a viewer does without: the /Interpolate flag of images (ISO 19005-2
6.2.8), image alternates and OPI, a form's PostScript, transfer functions and halftone origins in graphics
states (6.2.5), incomplete font subset lists (/CharSet, /CIDSet), an optional-content configuration's /AS
(6.9), metadata streams inside objects other than the catalog, page-level output intents, and annotation
appearances other than the normal one (6.3.2, 6.3.3).
"""

from __future__ import annotations

import pikepdf

# Annotation flag bits (PDF 32000-1, 12.5.3): PDF/A wants every annotation printed and never hidden.
_PRINT, _HIDDEN_FLAGS = 4, 1 | 2 | 32


def mend(pdf: pikepdf.Pdf) -> None:
    """Every in-place mend, over every object of the file."""
    for obj in list(pdf.objects):
        if not isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
            continue
        subtype = obj.get("/Subtype")
        if subtype == "/Image":
            _drop(obj, "/Interpolate", "/Alternates", "/OPI")
        elif subtype == "/Form":
            _drop(obj, "/OPI", "/PS")
            if obj.get("/Subtype2") == "/PS":
                del obj["/Subtype2"]
        if obj.get("/Type") == "/FontDescriptor" or "/FontName" in obj and "/Flags" in obj:
            # Optional in PDF/A-2, and veraPDF fails a subset list that misses a glyph (6.2.11.4.2).
            _drop(obj, "/CharSet", "/CIDSet")
        if obj.get("/Type") == "/ExtGState":
            _mend_graphics_state(obj)
        resources = obj.get("/Resources")
        if isinstance(resources, pikepdf.Dictionary):
            for state in (resources.get("/ExtGState") or {}).values():
                if isinstance(state, pikepdf.Dictionary):
                    _mend_graphics_state(state)
        if obj.get("/Type") == "/Page":
            _drop(obj, "/OutputIntents")
        if "/Metadata" in obj and obj.objgen != pdf.Root.objgen:
            # XMP of an image or a font (Photoshop's, often): the file's own XMP is the one PDF/A describes.
            del obj["/Metadata"]
    version = pdf.Root.get("/Version")
    if version is not None and str(version) > "/1.7":
        del pdf.Root["/Version"]  # PDF/A-2 is PDF 1.7 (6.1.2); the header is written as 1.7 too
    _mend_optional_content(pdf)
    print_annotations(pdf)


def _drop(obj: pikepdf.Object, *keys: str) -> None:
    for key in keys:
        if key in obj:
            del obj[key]


def _mend_graphics_state(state: pikepdf.Object) -> None:
    """No transfer function but the default, no halftone origin (6.2.5)."""
    _drop(state, "/TR", "/HTP")
    if "/TR2" in state and state.get("/TR2") != "/Default":
        state.TR2 = pikepdf.Name.Default


def _mend_optional_content(pdf: pikepdf.Pdf) -> None:
    """Each optional-content configuration named, and without /AS (6.9)."""
    properties = pdf.Root.get("/OCProperties")
    if not isinstance(properties, pikepdf.Dictionary):
        return
    configs = [properties.get("/D"), *(properties.get("/Configs") or [])]
    for number, config in enumerate(configs):
        if isinstance(config, pikepdf.Dictionary):
            _drop(config, "/AS")
            if "/Name" not in config:
                config.Name = pikepdf.String("Default" if number == 0 else f"Configuration {number}")


def print_annotations(pdf: pikepdf.Pdf) -> None:
    """Every annotation printed and shown, with its normal appearance only (6.3.2, 6.3.3): the rollover and
    down ones are for the pointer, and never printed."""
    for page in pdf.pages:
        for annotation in page.obj.get("/Annots") or []:
            flags = int(annotation.get("/F", 0))
            annotation.F = (flags | _PRINT) & ~_HIDDEN_FLAGS
            appearance = annotation.get("/AP")
            if isinstance(appearance, pikepdf.Dictionary):
                _drop(appearance, "/D", "/R")
