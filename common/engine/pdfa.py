"""The searchable PDF made PDF/A-2b in place: an sRGB output intent, XMP that says so, and the rules checked first.

Without Ghostscript here, nothing is re-encoded or re-embedded: a document that cannot be PDF/A-2b as it
stands (visible text in a font not embedded, CMYK colour without a CMYK profile, JavaScript, embedded files,
forbidden actions, annotations without an appearance, form fields the viewer must draw) stays a plain PDF, and
the reason is returned so the caller logs it; a PDF never claims a conformance it lacks. What can be mended in
place is: annotations printed, visible and with their normal appearance only. The tests have veraPDF judge the
result (local-stack/verapdf).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import pikepdf
from PIL import ImageCms

from common.errors import AssemblyFailed
from common.logging import get_logger

log = get_logger()

_FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")
# Annotation flag bits (PDF 32000-1, 12.5.3): PDF/A wants every annotation printed and never hidden.
_PRINT, _HIDDEN_FLAGS = 4, 1 | 2 | 32


@lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """littlecms's built-in sRGB profile (a display-class RGB ICC profile), as the output intent's destination."""
    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def archival(path: Path) -> Path:
    """The searchable PDF at `path` made PDF/A-2b where it can be; one that cannot be stays plain, and the log
    says why."""
    reason = make_pdfa(path)
    if reason is not None:
        log.warning("pdfa.not_made", reason=reason)
    return path


def make_pdfa(path: Path) -> str | None:
    """Turn the PDF at `path` into PDF/A-2b; None when done, else why not (the file is then left unchanged)."""
    try:
        with pikepdf.open(path, allow_overwriting_input=True) as pdf:
            reason = obstacle(pdf)
            if reason is not None:
                return reason
            _print_annotations(pdf)
            _add_output_intent(pdf)
            with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
                meta.load_from_docinfo(pdf.docinfo)
                meta["pdfaid:part"] = "2"
                meta["pdfaid:conformance"] = "B"
            # qpdf writes the trailer /ID and the binary comment after the header, both required.
            pdf.save(path, fix_metadata_version=True)
    except pikepdf.PdfError as e:
        raise AssemblyFailed("the searchable PDF could not be made PDF/A", detail=str(e)) from e
    return None


def obstacle(pdf: pikepdf.Pdf) -> str | None:
    """The first PDF/A-2b rule the document breaks that cannot be mended without re-encoding it, or None."""
    if pdf.is_encrypted:
        return "the PDF is encrypted"
    names = pdf.Root.get("/Names")
    if names is not None and ("/JavaScript" in names or "/EmbeddedFiles" in names):
        return "the PDF carries JavaScript or embedded files"
    form = pdf.Root.get("/AcroForm")
    if form is not None and bool(form.get("/NeedAppearances", False)):
        return "its form fields ask the viewer to draw them (NeedAppearances)"
    if form is not None and "/XFA" in form:
        return "it carries an XFA form"
    if "/AA" in pdf.Root or _forbidden_action(pdf.Root.get("/OpenAction")):
        return "the document runs actions PDF/A forbids"
    for number, page in enumerate(pdf.pages, start=1):
        if "/AA" in page.obj:
            return f"page {number} runs actions PDF/A forbids"
        for annotation in page.obj.get("/Annots") or []:
            reason = _annotation_obstacle(annotation)
            if reason is not None:
                return f"{reason} on page {number}"
        # The page's own drawing, then its annotations' appearances (a filled-in form field draws its value
        # with a font of its own, often a standard one not embedded).
        drawings: list[tuple[str, pikepdf.Object, pikepdf.Object | None]] = [
            ("", page.obj, page.obj.get("/Resources"))]
        drawings += [(" in an annotation", appearance, appearance.get("/Resources"))
                     for appearance in _appearances(page)]
        for where, drawing, top in drawings:
            unembedded = False
            for resources in _resources(top):
                fonts = (resources.get("/Font") or {}).values()
                unembedded = unembedded or any(not _embedded(font) for font in fonts)
                for name, xobject in (resources.get("/XObject") or {}).items():
                    if xobject.get("/Subtype") == "/Image" and _cmyk(xobject.get("/ColorSpace")):
                        return f"image {name}{where} on page {number} is CMYK"
            # A font not embedded is allowed for invisible text only (text rendering mode 3, as in an OCR layer
            # over a scan): only then are the content streams read, to see how it is used.
            shown = _visible_unembedded_font(drawing, top) if unembedded else None
            if shown is not None:
                return f"font {shown}{where} on page {number} is not embedded"
    return None


_SHOW_TEXT = {"Tj", "TJ", "'", '"'}
_INVISIBLE = 3  # text rendering mode 3: neither fill nor stroke


def _visible_unembedded_font(drawing: pikepdf.Object, resources: pikepdf.Object | None) -> str | None:
    """The name of a font not embedded that `drawing` (a page or a form) shows in a visible rendering mode,
    following the forms it draws; a content stream that cannot be read counts every such font as visible."""
    seen: set[tuple[tuple[int, int], int, str]] = set()

    def walk(content: pikepdf.Object, resources: pikepdf.Object | None, mode: int, font_name: str,
             font: pikepdf.Object | None) -> str | None:
        fonts = (resources.get("/Font") if resources is not None else None) or pikepdf.Dictionary()
        xobjects = (resources.get("/XObject") if resources is not None else None) or pikepdf.Dictionary()
        states = (resources.get("/ExtGState") if resources is not None else None) or pikepdf.Dictionary()
        stack: list[tuple[int, str, pikepdf.Object | None]] = []
        for instruction in pikepdf.parse_content_stream(content):
            operands, op = instruction.operands, str(instruction.operator)
            if op == "q":
                stack.append((mode, font_name, font))
            elif op == "Q" and stack:
                mode, font_name, font = stack.pop()
            elif op == "Tr" and operands:
                mode = int(operands[0])
            elif op == "Tf" and operands:
                font_name, font = str(operands[0]), fonts.get(str(operands[0]))
            elif op == "gs" and operands:
                state = states.get(str(operands[0]))
                chosen = state.get("/Font") if isinstance(state, pikepdf.Dictionary) else None
                if isinstance(chosen, pikepdf.Array) and len(chosen) > 0:
                    font_name, font = f"{operands[0]} (graphics state)", chosen[0]
            elif op in _SHOW_TEXT:
                if mode != _INVISIBLE and font is not None and not _embedded(font):
                    return font_name
            elif op == "Do" and operands:
                form = xobjects.get(str(operands[0]))
                if isinstance(form, pikepdf.Stream) and form.get("/Subtype") == "/Form":
                    key = (form.objgen, mode, font_name)
                    if key not in seen:
                        seen.add(key)
                        found = walk(form, form.get("/Resources", resources), mode, font_name, font)
                        if found is not None:
                            return found
        return None

    try:
        return walk(drawing, resources, 0, "", None)
    except (pikepdf.PdfError, ValueError, TypeError):
        for each in _resources(resources):
            for name, font in (each.get("/Font") or {}).items():
                if not _embedded(font):
                    return str(name)
        return None


# ISO 19005-2 6.3.1 and 6.5.1: annotation types and actions a PDF/A file may not hold.
_FORBIDDEN_ANNOTATIONS = {"/3D", "/Sound", "/Screen", "/Movie", "/RichMedia"}
_FORBIDDEN_ACTIONS = {"/Launch", "/Sound", "/Movie", "/ResetForm", "/ImportData", "/JavaScript", "/Hide",
                      "/SetOCGState", "/Rendition", "/Trans", "/GoTo3DView", "/RichMediaExecute"}
# Annotations that need no appearance (6.3.3): pop-ups and links.
_WITHOUT_APPEARANCE = {"/Popup", "/Link"}


def _forbidden_action(action: pikepdf.Object | None) -> bool:
    """An action dictionary (or a chain of them through /Next) that PDF/A forbids; a destination is no action."""
    seen: set[tuple[int, int]] = set()
    pending = [action]
    while pending:
        current = pending.pop()
        if not isinstance(current, pikepdf.Dictionary) or (current.is_indirect and current.objgen in seen):
            continue
        if current.is_indirect:
            seen.add(current.objgen)
        if current.get("/S") in _FORBIDDEN_ACTIONS:
            return True
        following = current.get("/Next")
        pending.extend(following if isinstance(following, pikepdf.Array) else [following])
    return False


def _annotation_obstacle(annotation: pikepdf.Object) -> str | None:
    """Why an annotation keeps the document from PDF/A-2b (6.3, 6.5), or None; /D and /R appearances and the
    print flags are mended instead (_print_annotations)."""
    if not isinstance(annotation, pikepdf.Dictionary):
        return None
    subtype = annotation.get("/Subtype")
    if subtype in _FORBIDDEN_ANNOTATIONS:
        return f"a {str(subtype)[1:]} annotation"
    if "/AA" in annotation or _forbidden_action(annotation.get("/A")):
        return "an annotation that runs actions PDF/A forbids"
    if subtype not in _WITHOUT_APPEARANCE and "/AP" not in annotation:
        rect = [float(v) for v in annotation.get("/Rect") or []]
        if len(rect) != 4 or rect[0] != rect[2] or rect[1] != rect[3]:  # only a point needs none
            return "an annotation without an appearance"
    return None


def _appearances(page: pikepdf.Page) -> Iterator[pikepdf.Object]:
    """The appearance streams of the page's annotations: /N, /R and /D, each a form or a dictionary of them
    (one per state of a check box or radio button)."""
    for annotation in page.obj.get("/Annots") or []:
        for appearance in (annotation.get("/AP") or {}).values():
            if isinstance(appearance, pikepdf.Stream):
                yield appearance
            elif isinstance(appearance, pikepdf.Dictionary):
                yield from (state for state in appearance.values() if isinstance(state, pikepdf.Stream))


def _resources(resources: pikepdf.Object | None,
               seen: set[tuple[int, int]] | None = None) -> Iterator[pikepdf.Object]:
    """A resource dictionary and those of the forms it draws, each once."""
    if resources is None:
        return
    seen = set() if seen is None else seen
    yield resources
    for xobject in (resources.get("/XObject") or {}).values():
        if xobject.get("/Subtype") == "/Form" and xobject.objgen not in seen:
            seen.add(xobject.objgen)
            yield from _resources(xobject.get("/Resources"), seen)


def _embedded(font: pikepdf.Object) -> bool:
    if font.get("/Subtype") == "/Type3":
        return True  # its glyphs are content streams inside the font
    if font.get("/Subtype") == "/Type0":
        descendants = font.get("/DescendantFonts")
        return isinstance(descendants, pikepdf.Array) and len(descendants) > 0 and _embedded(descendants[0])
    descriptor = font.get("/FontDescriptor")
    return descriptor is not None and any(key in descriptor for key in _FONT_FILES)


def _cmyk(colour_space: pikepdf.Object | None) -> bool:
    if colour_space is None:
        return False
    if isinstance(colour_space, pikepdf.Array) and len(colour_space) > 1 and colour_space[0] == "/ICCBased":
        return int(colour_space[1].get("/N", 3)) == 4
    return str(colour_space) == "/DeviceCMYK"


def _print_annotations(pdf: pikepdf.Pdf) -> None:
    """Every annotation printed and shown, with its normal appearance only (6.3.2, 6.3.3): the rollover and
    down ones are for the pointer, and never printed."""
    for page in pdf.pages:
        for annotation in page.obj.get("/Annots") or []:
            flags = int(annotation.get("/F", 0))
            annotation.F = (flags | _PRINT) & ~_HIDDEN_FLAGS
            appearance = annotation.get("/AP")
            if isinstance(appearance, pikepdf.Dictionary):
                for key in ("/D", "/R"):
                    if key in appearance:
                        del appearance[key]


def _add_output_intent(pdf: pikepdf.Pdf) -> None:
    profile = pikepdf.Stream(pdf, srgb_profile(), N=3)
    intent = pikepdf.Dictionary(Type=pikepdf.Name.OutputIntent, S=pikepdf.Name.GTS_PDFA1,
                                OutputConditionIdentifier=pikepdf.String("sRGB IEC61966-2.1"),
                                Info=pikepdf.String("sRGB IEC61966-2.1"), DestOutputProfile=profile)
    pdf.Root.OutputIntents = pikepdf.Array([pdf.make_indirect(intent)])
