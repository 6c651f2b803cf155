"""A PDF's structure through pikepdf (qpdf): pages, their sizes, and scanned pages whose JPEG can be read as stored."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pikepdf

from common.errors import CorruptDocument, PdfEncrypted

# Operators a plain scanned page uses to place its one image; anything else (paths, text, shading,
# graphics state with transparency) may draw over the image, e.g. a redaction box, so such a page
# is rendered instead of read from its image.
_PLACEMENT_OPERATORS = frozenset({"q", "Q", "cm", "Do"})
_JPEG_COLOUR_SPACES = frozenset({"/DeviceGray", "/DeviceRGB"})
# Points by which a page image may miss the page's edges and still count as covering it.
_EDGE_TOLERANCE = 1.0


@dataclass(frozen=True)
class PageJpeg:
    """A page that is exactly one upright JPEG covering it: its object and its resolution."""

    objgen: tuple[int, int]
    dpi: int
    pixels: int


class PdfDocument:
    """One open PDF shared by the page workers; qpdf objects are not thread-safe, so every use takes the lock."""

    def __init__(self, path: Path) -> None:
        # qpdf says when a password is needed: its exception, not a program's message, marks an encrypted PDF.
        try:
            self._pdf = pikepdf.open(path)
        except pikepdf.PasswordError as e:
            raise PdfEncrypted("the PDF is encrypted and needs a password") from e
        except pikepdf.PdfError as e:
            raise CorruptDocument(f"the PDF cannot be read: {e}") from e
        self._lock = threading.Lock()

    def close(self) -> None:
        self._pdf.close()

    def __enter__(self) -> PdfDocument:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def page_count(self) -> int:
        with self._lock:
            try:
                return len(self._pdf.pages)
            except pikepdf.PdfError as e:  # a page tree qpdf cannot walk
                raise CorruptDocument(f"the PDF's pages cannot be read: {e}") from e

    def whole_page_jpegs(self, numbers: Iterable[int]) -> dict[int, PageJpeg]:
        """Pages (1-based) among `numbers` that are one JPEG and nothing else: their pixels are the page.

        Rendering such a page only decodes the JPEG again; tesseract can read the stored bytes itself.
        Any doubt (rotation, masks, colour spaces, other drawing, annotations) leaves a page out, and
        it is rendered as usual.
        """
        found: dict[int, PageJpeg] = {}
        with self._lock:
            for number in numbers:
                try:
                    jpeg = _whole_page_jpeg(self._pdf.pages[number - 1])
                except (pikepdf.PdfError, ValueError, KeyError, TypeError, AttributeError):
                    jpeg = None  # an odd page is rendered, never fatal here
                if jpeg is not None:
                    found[number] = jpeg
        return found

    def rendered_pixels(self, number: int, dpi: int) -> int:
        """Pixels of page `number` rendered at `dpi`: its crop box (what pdftoppm renders) in inches, squared."""
        with self._lock:
            page = self._pdf.pages[number - 1]
            box = pikepdf.Rectangle(page.cropbox)
            unit = float(page.obj.get("/UserUnit", 1))  # points per unit; over 1 on some very large pages
        return round(box.width * unit * dpi / 72) * round(box.height * unit * dpi / 72)

    def write_jpeg(self, jpeg: PageJpeg, out: Path) -> None:
        with self._lock:
            data = self._pdf.get_object(jpeg.objgen).read_raw_bytes()
        out.write_bytes(data)


def _whole_page_jpeg(page: pikepdf.Page) -> PageJpeg | None:
    if int(page.obj.get("/Rotate", 0)) % 360 or "/Annots" in page.obj:
        return None
    ctm = pikepdf.Matrix()
    stack: list[pikepdf.Matrix] = []
    placed: tuple[pikepdf.Matrix, pikepdf.Object] | None = None
    for instruction in pikepdf.parse_content_stream(page):
        operands, op = instruction.operands, str(instruction.operator)
        if op not in _PLACEMENT_OPERATORS:
            return None
        if op == "q":
            stack.append(ctm)
        elif op == "Q":
            ctm = stack.pop() if stack else pikepdf.Matrix()
        elif op == "cm":
            ctm = pikepdf.Matrix(*[float(v) for v in operands]) @ ctm
        elif op == "Do":
            if placed is not None:
                return None  # a second image
            placed = (ctm, operands[0])
    if placed is None:
        return None
    ctm, name = placed
    xobjects = page.resources.get("/XObject")
    image = xobjects.get(str(name)) if xobjects is not None else None
    if image is None or image.get("/Subtype") != "/Image" or not _plain_jpeg(image):
        return None
    a, b, c, d, e, f = ctm.shorthand
    box = pikepdf.Rectangle(page.cropbox)
    upright = b == 0 and c == 0 and a > 0 and d > 0
    covers = upright and all(
        abs(got - want) <= _EDGE_TOLERANCE
        for got, want in ((e, box.llx), (f, box.lly), (e + a, box.urx), (f + d, box.ury))
    )
    if not covers:
        return None
    dpi_x, dpi_y = int(image.Width) * 72 / a, int(image.Height) * 72 / d
    if abs(dpi_x - dpi_y) > 0.02 * dpi_x:
        return None  # non-square pixels: tesseract takes one resolution
    return PageJpeg(objgen=image.objgen, dpi=round(dpi_x), pixels=int(image.Width) * int(image.Height))


def _plain_jpeg(image: pikepdf.Object) -> bool:
    """A JPEG whose decoded pixels are exactly what a viewer shows: no mask, no decode array, gray or RGB."""
    filters = image.get("/Filter")
    if isinstance(filters, pikepdf.Array):
        filters = filters[0] if len(filters) == 1 else None
    return (
        filters == "/DCTDecode"
        and str(image.get("/ColorSpace")) in _JPEG_COLOUR_SPACES
        and int(image.get("/BitsPerComponent", 8)) == 8
        and not bool(image.get("/ImageMask", False))
        and all(key not in image for key in ("/SMask", "/Mask", "/Decode", "/DecodeParms"))
    )
