"""The searchable PDF assembled from the pages: text layers laid over the original pages (level words over a page
read turned), an image page made from the scan itself, or image pages' PDFs joined."""

from __future__ import annotations

import io
import math
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import img2pdf
import pikepdf

from common.engine.run import run
from common.engine.page.straighten import Straightening
from common.errors import AssemblyFailed, OcrError
from common.models import Word


@dataclass(frozen=True)
class TextLayer:
    """tesseract's text-only PDF of a page, how the raster it read was turned from the page, and whether the
    page's own text must stop being found (its text layer was rejected)."""

    pdf: Path
    geometry: Straightening
    hide_old_text: bool = False
    words: list[Word] = field(default_factory=list)  # on the page as scanned, with polygons when it was turned


def lay_text_over(original: Path, layers: Mapping[int, TextLayer], out: Path) -> Path:
    """The original PDF with each OCRed page's text-only PDF laid over it; other pages stay as they are.

    Each layer is placed on the page as tesseract read it: turned back by the angle its raster was turned
    to be read, so the invisible words sit on the scanned ones, and a page read a quarter turn round gets
    the same /Rotate, so it shows upright. Keeping the original page keeps its image untouched: no
    re-encoding, colour and size kept. A page whose own text layer was rejected keeps its drawing, but
    its old text is marked as having no text (an empty /ActualText), so searching or copying it gives
    the new layer's words alone.
    """
    if not layers:
        shutil.copyfile(original, out)
        return out
    texts: list[pikepdf.Pdf] = []  # the overlays' sources must stay open until the save reads them
    try:
        with pikepdf.open(original) as pdf:
            for number, layer in sorted(layers.items()):
                page = pdf.pages[number - 1]
                # A text layer is a few kilobytes; read whole, it needs no open file until the save.
                texts.append(pikepdf.open(io.BytesIO(layer.pdf.read_bytes())))
                _overlay(pdf, page, texts[-1].pages[0], layer)
            pdf.save(out)
    except pikepdf.PdfError as e:
        raise AssemblyFailed("the text layers could not be laid over the PDF", detail=str(e)) from e
    finally:
        for text in texts:
            text.close()
    return out


def image_page(image: Path, dpi: int, layer: TextLayer, out: Path) -> Path:
    """A PDF page of the scanned image as it is (its own JPEG bytes, or its samples losslessly) with the
    text read from its straightened copy laid over it: the searchable page of an image read turned,
    deskewed or cleaned, whose scan the user keeps as scanned."""
    try:
        # img2pdf takes a JPEG's bytes as they are; other rasters here are grey or RGB TIFFs, kept lossless.
        data = img2pdf.convert(str(image), layout_fun=img2pdf.get_fixed_dpi_layout_fun((dpi, dpi)))
        with pikepdf.open(io.BytesIO(data)) as pdf, pikepdf.open(io.BytesIO(layer.pdf.read_bytes())) as text:
            _overlay(pdf, pdf.pages[0], text.pages[0], layer)
            pdf.save(out)
    except (pikepdf.PdfError, img2pdf.ImageOpenError, OSError, ValueError) as e:
        raise AssemblyFailed("the page of a straightened image could not be made", detail=str(e)) from e
    return out


def _overlay(pdf: pikepdf.Pdf, page: pikepdf.Page, text: pikepdf.Page, layer: TextLayer) -> None:
    """Lay the page's invisible text over `page`: tesseract's layer as it is for a page read as it lies, or,
    for a page read turned, each word laid level (as the page shows upright) on its place on the scan.

    A text layer turned by a few degrees as a whole is what pdftotext and viewers read worst: they take each
    tilted line for pieces of several, letter by letter. Words laid level one by one are found and copied
    whole, and each still sits on its word of the scan.
    """
    shown = int(page.obj.get("/Rotate", 0)) % 360
    before = b"/Span <</ActualText ()>> BDC\nq\n" if layer.hide_old_text else b"q\n"
    after = b"\nQ\nEMC\n" if layer.hide_old_text else b"\nQ\n"
    if layer.geometry.angle == 0:
        name = page.add_resource(text.as_form_xobject(), pikepdf.Name.XObject)
        a, b, c, d, e, f = _placement(layer, pikepdf.Rectangle(page.cropbox), pikepdf.Rectangle(text.mediabox), shown)
        drawn = f"q {a:.6f} {b:.6f} {c:.6f} {d:.6f} {e:.4f} {f:.4f} cm {name} Do Q\n".encode()
    else:
        font = _glyphless_font(text)
        if font is None:
            raise AssemblyFailed("tesseract's text layer carries no font to lay the words in")
        name = page.add_resource(pdf.copy_foreign(font), pikepdf.Name.Font)
        drawn = _level_words(layer, _Shown(pikepdf.Rectangle(page.cropbox), shown, layer.geometry.original), name)
    page.contents_add(before, prepend=True)
    page.contents_add(after + drawn, prepend=False)
    page.contents_coalesce()
    if layer.geometry.rotation:
        page.obj.Rotate = (shown + layer.geometry.rotation) % 360


def _placement(layer: TextLayer, crop: pikepdf.Rectangle, text: pikepdf.Rectangle,
               shown: int) -> tuple[float, float, float, float, float, float]:
    """The `cm` that takes tesseract's text page onto the crop box: centre on centre, scaled from the read
    raster's pixels to the page's, turned back by the page's own /Rotate (the raster was the page as shown,
    the text goes into the page as stored)."""
    geometry = layer.geometry
    across = crop.height if shown in (90, 270) else crop.width  # the crop box's width as shown
    s = (across / geometry.original[0]) / (text.width / geometry.read[0])
    phi = math.radians(shown - geometry.angle)  # in PDF's y-up space a positive angle turns anticlockwise
    a, b = s * math.cos(phi), s * math.sin(phi)
    c, d = -b, a
    tx, ty = text.llx + text.width / 2, text.lly + text.height / 2
    cx, cy = crop.llx + crop.width / 2, crop.lly + crop.height / 2
    return a, b, c, d, cx - a * tx - c * ty, cy - b * tx - d * ty


def _glyphless_font(text: pikepdf.Page) -> pikepdf.Object | None:
    """The invisible font of tesseract's text-only page (its GlyphLessFont: every character one blank glyph
    half an em wide, written as UTF-16 code units)."""
    resources: list[pikepdf.Object] = [text.resources]
    xobjects = text.resources.get("/XObject")
    if isinstance(xobjects, pikepdf.Dictionary):
        resources += [x.Resources for x in xobjects.values() if isinstance(x, pikepdf.Stream) and "/Resources" in x]
    for each in resources:
        fonts = each.get("/Font") if isinstance(each, pikepdf.Dictionary) else None
        if isinstance(fonts, pikepdf.Dictionary):
            for font in fonts.values():
                return font
    return None


@dataclass(frozen=True)
class _Shown:
    """The page as its raster showed it: the crop box turned by /Rotate, `size` pixels across and down."""

    crop: pikepdf.Rectangle
    rotate: int
    size: tuple[int, int]

    def point(self, x: float, y: float) -> tuple[float, float]:
        """A raster pixel (y down) in the page's own coordinates (points, y up, before /Rotate)."""
        box = self.crop
        across, down = (box.height, box.width) if self.rotate in (90, 270) else (box.width, box.height)
        u, v = x * across / self.size[0], down - y * down / self.size[1]
        if self.rotate == 90:
            return box.urx - v, box.lly + u
        if self.rotate == 180:
            return box.urx - u, box.ury - v
        if self.rotate == 270:
            return box.llx + v, box.ury - u
        return box.llx + u, box.lly + v


def _level_words(layer: TextLayer, shown: _Shown, font: pikepdf.Name) -> bytes:
    """Each word as invisible text (mode 3) on its polygon's baseline, its direction the nearest quarter turn
    of the word's own (so level as the page shows upright), its size and width the polygon's."""
    out = ["BT 3 Tr"]
    for word in layer.words:
        if not word.text or word.polygon is None:
            continue
        tl, tr, _, bl = (shown.point(x, y) for x, y in word.polygon)
        along = math.hypot(tr[0] - tl[0], tr[1] - tl[1])
        up = math.hypot(tl[0] - bl[0], tl[1] - bl[1])
        if along < 0.5 or up < 0.5:
            continue
        quarter = round(math.atan2(tr[1] - tl[1], tr[0] - tl[0]) / (math.pi / 2)) * (math.pi / 2)
        cos, sin = round(math.cos(quarter)), round(math.sin(quarter))
        # Half an em per glyph in GlyphLessFont: the horizontal scale stretches the word to its width.
        chars = word.text + " "
        scale = 100.0 * along / (0.5 * up * len(chars))
        code = "".join(f"{unit:04X}" for unit in _utf16_units(chars))
        out.append(f"{cos} {sin} {-sin} {cos} {bl[0]:.2f} {bl[1]:.2f} Tm {font} {up:.2f} Tf {scale:.2f} Tz "
                   f"<{code}> Tj")
    out.append("ET\n")
    return "\n".join(out).encode()


def _utf16_units(text: str) -> list[int]:
    raw = text.encode("utf-16-be")
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


def join_pages(pages: list[Path], out: Path, timeout: float) -> Path:
    """An image's page PDFs (image and invisible text each) as one document, in order.

    pdfunite copies each page's objects as they are (the image is not encoded again), in a child
    process: the worker's memory does not grow with the page count.
    """
    try:
        run(["pdfunite", *map(str, pages), str(out)], timeout=timeout)
    except OcrError as e:
        # Every page was read: what failed is putting them together, whether it hung, failed or never started.
        raise AssemblyFailed(f"the page PDFs could not be joined ({e.message})", detail=e.detail) from e
    return out
