"""The PDF/A-2b rules a document can break that cannot be mended in place, each with a stable code.

Without a renderer to redraw the page, these stay broken: visible text in a font not embedded, colour in
device CMYK (the sRGB output intent describes RGB only), JavaScript, embedded files, forbidden actions and
annotation types, annotations without an appearance, form fields the viewer must draw. The checks are
conservative: a document they pass is one veraPDF passes (tests/unit/test_engine_pdfa_inputs.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pikepdf

from common.engine.pdfa.result import (ANNOTATION_APPEARANCE, CMYK_COLOUR, ENCRYPTED, FONT_NOT_EMBEDDED,
                                        FORBIDDEN_CONTENT, UNREADABLE)


@dataclass(frozen=True)
class Obstacle:
    """Why a document cannot be PDF/A-2b as it stands: a stable code and a sentence for a person."""

    code: str
    reason: str


_FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")
# ISO 19005-2 6.3.1 and 6.5.1: annotation types and actions a PDF/A file may not hold. A file attachment
# is allowed only if the attached file is PDF/A itself, which is not checked here.
_FORBIDDEN_ANNOTATIONS = {"/3D", "/Sound", "/Screen", "/Movie", "/RichMedia", "/FileAttachment"}
_FORBIDDEN_ACTIONS = {"/Launch", "/Sound", "/Movie", "/ResetForm", "/ImportData", "/JavaScript", "/Hide",
                      "/SetOCGState", "/Rendition", "/Trans", "/GoTo3DView", "/RichMediaExecute"}
# Annotations that need no appearance (6.3.3): pop-ups and links.
_WITHOUT_APPEARANCE = {"/Popup", "/Link"}
_SHOW_TEXT = {"Tj", "TJ", "'", '"'}
_INVISIBLE = 3  # text rendering mode 3: neither fill nor stroke
_CMYK = "/DeviceCMYK"
# Inline images name their colour space in short (PDF 32000-1, table 94).
_SHORT_SPACES = {"/G": "/DeviceGray", "/RGB": "/DeviceRGB", "/CMYK": _CMYK}
# Content operators that choose a device colour, and those that carry an inline image.
_COLOUR_OPERATORS = "k K cs CS BI ID EI"


def obstacle(pdf: pikepdf.Pdf) -> Obstacle | None:
    """The first PDF/A-2b rule the document breaks that cannot be mended without redrawing it, or None."""
    if pdf.is_encrypted:
        return Obstacle(ENCRYPTED, "the PDF is encrypted")
    return _document_obstacle(pdf) or _object_obstacle(pdf) or _page_obstacle(pdf)


def _document_obstacle(pdf: pikepdf.Pdf) -> Obstacle | None:
    names = pdf.Root.get("/Names")
    if names is not None and ("/JavaScript" in names or "/EmbeddedFiles" in names):
        return Obstacle(FORBIDDEN_CONTENT, "the PDF carries JavaScript or embedded files")
    form = pdf.Root.get("/AcroForm")
    if form is not None and bool(form.get("/NeedAppearances", False)):
        return Obstacle(ANNOTATION_APPEARANCE, "its form fields ask the viewer to draw them (NeedAppearances)")
    if form is not None and "/XFA" in form:
        return Obstacle(FORBIDDEN_CONTENT, "it carries an XFA form")
    if "/AA" in pdf.Root or _forbidden_action(pdf.Root.get("/OpenAction")):
        return Obstacle(FORBIDDEN_CONTENT, "the document runs actions PDF/A forbids")
    return None


def _object_obstacle(pdf: pikepdf.Pdf) -> Obstacle | None:
    """What any object of the file may hold: CMYK colour spaces, PostScript, LZW-compressed streams."""
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
            continue
        if obj.get("/Subtype") == "/PS":
            return Obstacle(FORBIDDEN_CONTENT, "it carries a PostScript XObject")
        if isinstance(obj, pikepdf.Stream) and "/LZWDecode" in _filters(obj):
            return Obstacle(FORBIDDEN_CONTENT, "it holds LZW-compressed data")
        for where, space in _colour_spaces(obj):
            if _CMYK in _device_spaces(space):
                return Obstacle(CMYK_COLOUR, f"{where} is in CMYK colour")
    for stream in _content_streams(pdf):
        found = _content_obstacle(stream)
        if found is not None:
            return found
    return None


def _page_obstacle(pdf: pikepdf.Pdf) -> Obstacle | None:
    for number, page in enumerate(pdf.pages, start=1):
        if "/AA" in page.obj:
            return Obstacle(FORBIDDEN_CONTENT, f"page {number} runs actions PDF/A forbids")
        for annotation in page.obj.get("/Annots") or []:
            found = _annotation_obstacle(annotation)
            if found is not None:
                return Obstacle(found.code, f"{found.reason} on page {number}")
        # The page's own drawing, then its annotations' appearances (a filled-in form field draws its value
        # with a font of its own, often a standard one not embedded).
        drawings: list[tuple[str, pikepdf.Object, pikepdf.Object | None]] = [
            ("", page.obj, page.obj.get("/Resources"))]
        drawings += [(" in an annotation", appearance, appearance.get("/Resources"))
                     for appearance in _appearances(page)]
        for where, drawing, top in drawings:
            unembedded = any(not _embedded(font) for resources in _resources(top)
                             for font in (resources.get("/Font") or {}).values())
            # A font not embedded is allowed for invisible text only (text rendering mode 3, as in an OCR layer
            # over a scan): only then are the content streams read, to see how it is used.
            shown = _visible_unembedded_font(drawing, top) if unembedded else None
            if shown is not None:
                return Obstacle(FONT_NOT_EMBEDDED, f"font {shown}{where} on page {number} is not embedded")
    return None


def _filters(stream: pikepdf.Stream) -> list[str]:
    chosen = stream.get("/Filter")
    if isinstance(chosen, pikepdf.Array):
        return [str(f) for f in chosen]
    return [str(chosen)] if chosen is not None else []


def _colour_spaces(obj: pikepdf.Object) -> Iterator[tuple[str, pikepdf.Object | None]]:
    """The colour spaces an object names, with what it is: an image's, a shading's, a transparency group's,
    and those of a resource dictionary it holds (named colour spaces, shadings, shading patterns)."""
    if obj.get("/Subtype") == "/Image" and not bool(obj.get("/ImageMask", False)):
        yield "an image", obj.get("/ColorSpace")
    if "/ShadingType" in obj:
        yield "a shading", obj.get("/ColorSpace")
    group = obj.get("/Group")
    if isinstance(group, pikepdf.Dictionary) and "/CS" in group:
        yield "a transparency group", group.get("/CS")
    resources = obj.get("/Resources")
    if not isinstance(resources, pikepdf.Dictionary):
        return
    for space in (resources.get("/ColorSpace") or {}).values():
        yield "a colour space", space
    for shading in (resources.get("/Shading") or {}).values():
        if isinstance(shading, pikepdf.Dictionary | pikepdf.Stream):
            yield "a shading", shading.get("/ColorSpace")
    for pattern in (resources.get("/Pattern") or {}).values():
        inner = pattern.get("/Shading") if isinstance(pattern, pikepdf.Dictionary | pikepdf.Stream) else None
        if isinstance(inner, pikepdf.Dictionary | pikepdf.Stream):
            yield "a shading pattern", inner.get("/ColorSpace")


def _device_spaces(space: pikepdf.Object | None, depth: int = 0) -> set[str]:
    """The device colour spaces a colour space rests on: itself, or the base or alternate of an indexed,
    separation, DeviceN or pattern space. An ICC-based CMYK space counts as CMYK: its profile is not checked."""
    if space is None or depth > 4:
        return set()
    if isinstance(space, pikepdf.Name):
        name = _SHORT_SPACES.get(str(space), str(space))
        return {name} if name.startswith("/Device") else set()
    if not isinstance(space, pikepdf.Array) or len(space) == 0:
        return set()
    family = str(space[0])
    if family == "/ICCBased" and len(space) > 1 and isinstance(space[1], pikepdf.Stream):
        return {_CMYK} if int(space[1].get("/N", 3)) == 4 else set()
    if family in ("/Indexed", "/I", "/Pattern") and len(space) > 1:
        return _device_spaces(space[1], depth + 1)
    if family in ("/Separation", "/DeviceN") and len(space) > 2:
        return _device_spaces(space[2], depth + 1)
    return set()


def _content_streams(pdf: pikepdf.Pdf) -> Iterator[pikepdf.Object]:
    """Every content stream: the pages', forms', tiling patterns' and Type 3 glyphs'."""
    for page in pdf.pages:
        yield page.obj
    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Stream) and (obj.get("/Subtype") == "/Form" or obj.get("/PatternType") == 1):
            yield obj
        elif isinstance(obj, pikepdf.Dictionary) and obj.get("/Subtype") == "/Type3":
            yield from (glyph for glyph in (obj.get("/CharProcs") or {}).values()
                        if isinstance(glyph, pikepdf.Stream))


def _content_obstacle(stream: pikepdf.Object) -> Obstacle | None:
    """Device CMYK chosen by an operator, or an inline image in CMYK or asking to be interpolated."""
    try:
        if not _may_choose_colour(stream):
            return None
        instructions = pikepdf.parse_content_stream(stream, _COLOUR_OPERATORS)
    except pikepdf.PdfError:
        return Obstacle(UNREADABLE, "a content stream cannot be read")
    for instruction in instructions:
        if isinstance(instruction, pikepdf.ContentStreamInlineImage):
            image = instruction.iimage.obj
            if _CMYK in _device_spaces(image.get("/ColorSpace")):
                return Obstacle(CMYK_COLOUR, "an inline image is in CMYK colour")
            if bool(image.get("/Interpolate", False)):
                return Obstacle(FORBIDDEN_CONTENT, "an inline image asks to be interpolated")
            continue
        op = str(instruction.operator)
        if op in ("k", "K") or (op in ("cs", "CS") and instruction.operands
                                and _CMYK in _device_spaces(instruction.operands[0])):
            return Obstacle(CMYK_COLOUR, "the page draws in CMYK colour")
    return None


# The last byte of an operator _COLOUR_OPERATORS names (k, K, cs, CS, BI) ending a token; what comes before
# is checked apart, as a pattern starting with one character class is the one the regular expression engine
# scans for fast. A cheap test before the stream is parsed: a match inside a string only costs the parse.
_COLOUR_TOKEN_END = re.compile(rb"[kKsSI](?=[\s\[(</%]|$)")
_OPERATORS = (b"k", b"K", b"cs", b"CS", b"BI")
_BEFORE_TOKEN = frozenset(b" \t\r\n\f\x00])>")


def _may_choose_colour(content: pikepdf.Object) -> bool:
    """Whether the content (a page's streams, or a form's) has a token that can choose a colour space."""
    chosen = content.get("/Contents") if content.get("/Type") == "/Page" else content
    streams = [chosen] if isinstance(chosen, pikepdf.Stream) else list(chosen or [])
    for each in streams:
        if isinstance(each, pikepdf.Stream) and _has_colour_operator(each.read_bytes()):
            return True
    return False


def _has_colour_operator(data: bytes) -> bool:
    for found in _COLOUR_TOKEN_END.finditer(data):
        end = found.end()
        for operator in _OPERATORS:
            start = end - len(operator)
            if data[start:end] == operator and (start == 0 or data[start - 1] in _BEFORE_TOKEN):
                return True
    return False


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


def _annotation_obstacle(annotation: pikepdf.Object) -> Obstacle | None:
    """Why an annotation keeps the document from PDF/A-2b (6.3, 6.5), or None; /D and /R appearances and the
    print flags are mended instead (pdfa_mend.print_annotations)."""
    if not isinstance(annotation, pikepdf.Dictionary):
        return None
    subtype = annotation.get("/Subtype")
    if subtype in _FORBIDDEN_ANNOTATIONS:
        return Obstacle(FORBIDDEN_CONTENT, f"a {str(subtype)[1:]} annotation")
    if "/AA" in annotation or _forbidden_action(annotation.get("/A")):
        return Obstacle(FORBIDDEN_CONTENT, "an annotation that runs actions PDF/A forbids")
    if subtype not in _WITHOUT_APPEARANCE and "/AP" not in annotation:
        rect = [float(v) for v in annotation.get("/Rect") or []]
        if len(rect) != 4 or rect[0] != rect[2] or rect[1] != rect[3]:  # only a point needs none
            return Obstacle(ANNOTATION_APPEARANCE, "an annotation without an appearance")
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
