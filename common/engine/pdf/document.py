"""A PDF's structure through pikepdf (qpdf): pages, their sizes, and scanned pages whose one image is read as stored."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pikepdf
from PIL import Image

from common.engine.pdf import jbig2

from common.engine.pdf import stored_files
from common.errors import CorruptDocument, PdfEncrypted

# Operators a plain scanned page uses to place its one image; anything else (paths, text, shading,
# graphics state with transparency) may draw over the image, e.g. a redaction box, so such a page
# is rendered instead of read from its image.
_PLACEMENT_OPERATORS = frozenset({"q", "Q", "cm", "Do"})
_PLAIN_COLOUR_SPACES = frozenset({"/DeviceGray", "/DeviceRGB"})
# Keys that change what a viewer shows of an image's samples (masks, a decode remap, optional content):
# a page image carrying one is rendered. /Decode is weighed apart for 1-bit images, where [1 0] is common.
_ALTERING_KEYS = ("/SMask", "/Mask", "/Decode", "/OC")
# Points by which a page image may miss the page's edges and still count as covering it.
_EDGE_TOLERANCE = 1.0


@dataclass(frozen=True)
class PageJpeg:
    """A page that is exactly one upright JPEG covering it: its object and its resolution."""

    objgen: tuple[int, int]
    dpi: int
    pixels: int


# How a lossless page image is handed to tesseract: 8-bit gray or RGB samples, 1-bit samples, palette
# indices (1 to 8 bits) with their colours, a CCITT G4 or G3 stream passed on undecoded inside a TIFF,
# or a JBIG2 stream decoded by jbig2dec (common.engine.pdf.jbig2).
LosslessKind = Literal["gray", "rgb", "bilevel", "indexed", "ccitt", "jbig2"]


@dataclass(frozen=True)
class PageLossless:
    """A page that is exactly one upright losslessly stored image covering it: Flate (or unfiltered)
    gray or RGB at 8 bits, 1-bit gray, Indexed over gray or RGB, CCITT G4 or G3, or JBIG2. `black_is_0`:
    for "bilevel" and "jbig2", whether a 0 sample shows black (PDF's default for samples, not for JBIG2,
    whose 1 is black; /Decode [1 0] turns either). A CCITT stream's
    TIFF header says the same itself. For "indexed": `bits` per index and `palette`, 2**bits RGB triples."""

    objgen: tuple[int, int]
    dpi: int
    pixels: int
    width: int
    height: int
    kind: LosslessKind
    black_is_0: bool = True
    bits: int = 8
    palette: bytes = b""


@dataclass(frozen=True)
class PlacedImage:
    """An image as a page draws it: its pixels, its resolution in pdftoppm's DPI, the share of the page it covers."""

    pixels: int
    dpi: float
    coverage: float


class PdfDocument:
    """One open PDF shared by the page workers; qpdf objects are not thread-safe, so every use takes the lock."""

    def __init__(self, path: Path) -> None:
        # qpdf says when a password is needed: its exception, not a program's message, marks an encrypted PDF.
        try:
            self._pdf = pikepdf.open(path)
        except pikepdf.PasswordError as e:
            raise PdfEncrypted("the PDF is encrypted and needs a password") from e
        except pikepdf.PdfError as e:
            raise CorruptDocument("the PDF is damaged and cannot be read", detail=str(e)) from e
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
                raise CorruptDocument("the PDF's page tree is damaged and cannot be read", detail=str(e)) from e

    def whole_page_images(self, numbers: Iterable[int]) -> dict[int, PageJpeg | PageLossless]:
        """Pages (1-based) among `numbers` that are one image and nothing else, stored as JPEG or
        losslessly in a form tesseract can be given without rendering: their pixels are the page.

        Rendering such a page only decodes the image again (and, for a colour or 1-bit scan, turns it
        into more bytes). Any doubt (rotation, masks, colour spaces, other drawing, annotations, an
        encoding not handled here such as JBIG2 or CCITT G3 without end-of-line codes) leaves a page
        out, and it is rendered.
        """
        found: dict[int, PageJpeg | PageLossless] = {}
        with self._lock:
            for number in numbers:
                try:
                    image = _whole_page_image(self._pdf.pages[number - 1])
                except (pikepdf.PdfError, ValueError, KeyError, TypeError, AttributeError, ZeroDivisionError):
                    image = None  # an odd page is rendered, never fatal here
                if image is not None:
                    found[number] = image
        return found

    def whole_page_jpegs(self, numbers: Iterable[int]) -> dict[int, PageJpeg]:
        """Pages (1-based) among `numbers` that are one JPEG and nothing else; see whole_page_images."""
        return {n: image for n, image in self.whole_page_images(numbers).items() if isinstance(image, PageJpeg)}

    def rendered_pixels(self, number: int, dpi: int) -> int:
        """Pixels of page `number` rendered at `dpi`: its crop box (what pdftoppm renders) in inches, squared.

        In points, as pdftoppm counts them: poppler renders a page's /UserUnit as 1 (measured), so a
        page with /UserUnit 10 is no larger a raster than the same page without it.
        """
        with self._lock:
            box = pikepdf.Rectangle(self._pdf.pages[number - 1].cropbox)
        return round(box.width * dpi / 72) * round(box.height * dpi / 72)

    def largest_image(self, number: int) -> PlacedImage | None:
        """The image drawn on page `number` with the most pixels, its resolution and how much of the page it
        covers; None for a page without images (or one whose drawing cannot be followed)."""
        with self._lock:
            try:
                return _largest_image(self._pdf.pages[number - 1])
            except (pikepdf.PdfError, ValueError, KeyError, TypeError, AttributeError, ZeroDivisionError):
                return None

    def write_jpeg(self, jpeg: PageJpeg, out: Path) -> None:
        with self._lock:
            data = self._pdf.get_object(jpeg.objgen).read_raw_bytes()
        out.write_bytes(data)

    def jbig2_streams(self, image: PageLossless) -> tuple[bytes, bytes | None] | None:
        """A JBIG2 page image's embedded stream and its /JBIG2Globals (decoded from any filter of its own),
        for jbig2dec; None when either cannot be read (render the page then)."""
        try:
            with self._lock:
                obj = self._pdf.get_object(image.objgen)
                if not isinstance(obj, pikepdf.Stream):
                    return None
                _, parms = _only_filter(obj)
                shared = parms.get("/JBIG2Globals") if parms is not None else None
                if shared is not None and not isinstance(shared, pikepdf.Stream):
                    return None
                return obj.read_raw_bytes(), (shared.read_bytes() if shared is not None else None)
        except (pikepdf.PikepdfError, ValueError, KeyError, TypeError, NotImplementedError):
            return None

    def write_lossless(self, image: PageLossless, out: Path) -> Path | None:
        """The page image as a file for tesseract at `out` with the suffix its format takes, or None when its
        stream cannot be what its dictionary promises: render the page then.

        A Flate stream goes into a TIFF (Deflate) or, with PNG predictors, a PNG as it is stored; leptonica
        inflates it as it would a scan given to the CLI. Whether it inflates to the whole image is known only
        then: tesseract reads no page from a short stream, and the page is rendered (TesseractEngine). Other
        samples go into an uncompressed TIFF, which leptonica reads fastest (PNG takes about 13x, PNM 28x as
        long for a gray A4 page, measured); a CCITT stream into a TIFF as it is.
        """
        if image.kind == "jbig2":
            return None  # jbig2dec decodes these (jbig2.decode, with jbig2_streams)
        try:
            with self._lock:
                obj = self._pdf.get_object(image.objgen)
                if not isinstance(obj, pikepdf.Stream):
                    return None
                filters, parms = _only_filter(obj)
                predicted = parms is not None and int(parms.get("/Predictor", 1)) >= 10
                if image.kind == "ccitt":
                    out = out.with_suffix(".tif")
                    # pikepdf wraps the G4 or G3 stream in a TIFF header (group, 2-D coding), photometry from
                    # /BlackIs1 and /Decode.
                    with out.open("wb") as f:
                        if pikepdf.PdfImage(obj).extract_to(stream=f) != ".tif":
                            return None
                    data = b""  # written already
                elif filters == "/FlateDecode" and not (predicted and not image.black_is_0):
                    data = obj.read_raw_bytes()
                else:
                    # Unfiltered samples, or a PNG-predicted 1-bit image shown inverted (PNG has no such photometry).
                    data = obj.read_bytes()
                    filters = None
        except (pikepdf.PikepdfError, ValueError, KeyError, TypeError, NotImplementedError):
            return None
        if image.kind == "ccitt":
            # Decoded once (a few ms for a page): a damaged stream, which poppler draws as far as it goes,
            # would otherwise fail tesseract and the job.
            try:
                with Image.open(out) as check:
                    check.load()
            except (OSError, ValueError, SyntaxError):
                return None
            return out
        samples = 3 if image.kind == "rgb" else 1
        bits = {"bilevel": 1, "indexed": image.bits}.get(image.kind, 8)
        photometric = {"rgb": stored_files.RGB, "indexed": stored_files.PALETTE}.get(
            image.kind, stored_files.BLACK_IS_ZERO if image.black_is_0 else stored_files.WHITE_IS_ZERO)
        if filters == "/FlateDecode" and predicted:
            out = out.with_suffix(".png")
            colour_type = {"rgb": 2, "indexed": 3}.get(image.kind, 0)
            out.write_bytes(stored_files.png(data, image.width, image.height, bits, colour_type, image.dpi,
                                             image.palette))
            return out
        out = out.with_suffix(".tif")
        if filters == "/FlateDecode":
            out.write_bytes(stored_files.tiff(data, image.width, image.height, bits, samples, photometric,
                                              stored_files.DEFLATE, image.dpi, image.palette))
            return out
        size = (image.width * samples * bits + 7) // 8 * image.height
        if len(data) < size:
            return None  # a truncated stream: poppler draws what it can, so the page is rendered
        out.write_bytes(stored_files.tiff(data[:size], image.width, image.height, bits, samples, photometric,
                                          stored_files.UNCOMPRESSED, image.dpi, image.palette))
        return out


def _drawing(page: pikepdf.Page, only: str = "") -> Iterator[tuple[str, list[pikepdf.Object], pikepdf.Matrix]]:
    """The page's content-stream instructions (only the `only` operators, if given), each with the
    transformation in force after it: q/Q/cm are followed, as a viewer would."""
    ctm = pikepdf.Matrix()
    stack: list[pikepdf.Matrix] = []
    instructions = pikepdf.parse_content_stream(page, only) if only else pikepdf.parse_content_stream(page)
    for instruction in instructions:
        operands, op = list(instruction.operands), str(instruction.operator)
        if op == "q":
            stack.append(ctm)
        elif op == "Q":
            ctm = stack.pop() if stack else pikepdf.Matrix()
        elif op == "cm":
            ctm = pikepdf.Matrix(*[float(v) for v in operands]) @ ctm
        yield op, operands, ctm


def _whole_page_image(page: pikepdf.Page) -> PageJpeg | PageLossless | None:
    if int(page.obj.get("/Rotate", 0)) % 360 or "/Annots" in page.obj:
        return None
    placed: tuple[pikepdf.Matrix, pikepdf.Object] | None = None
    for op, operands, ctm in _drawing(page):
        if op not in _PLACEMENT_OPERATORS:
            return None
        if op == "Do":
            if placed is not None:
                return None  # a second image
            placed = (ctm, operands[0])
    if placed is None:
        return None
    ctm, name = placed
    xobjects = page.resources.get("/XObject")
    image = xobjects.get(str(name)) if xobjects is not None else None
    if image is None or image.get("/Subtype") != "/Image":
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
    width, height = int(image.Width), int(image.Height)
    dpi_x, dpi_y = width * 72 / a, height * 72 / d
    if abs(dpi_x - dpi_y) > 0.02 * dpi_x:
        return None  # non-square pixels: tesseract takes one resolution
    if _plain_jpeg(image):
        return PageJpeg(objgen=image.objgen, dpi=round(dpi_x), pixels=width * height)
    stored = _plain_lossless(image)
    if stored is None:
        return None
    kind, black_is_0, palette = stored
    bits = int(image.get("/BitsPerComponent", 8)) if kind == "indexed" else 8
    return PageLossless(objgen=image.objgen, dpi=round(dpi_x), pixels=width * height, width=width, height=height,
                        kind=kind, black_is_0=black_is_0, bits=bits, palette=palette)


def _only_filter(image: pikepdf.Object) -> tuple[str | None, pikepdf.Object | None]:
    """The image's one filter (None: unfiltered) and its /DecodeParms; ("", None) for a chain of filters."""
    filters, parms = image.get("/Filter"), image.get("/DecodeParms")
    if isinstance(filters, pikepdf.Array):
        if len(filters) > 1:
            return "", None
        filters = filters[0] if len(filters) == 1 else None
        if isinstance(parms, pikepdf.Array):
            parms = parms[0] if len(parms) == 1 else None
    if isinstance(parms, pikepdf.Dictionary) or parms is None:
        return (str(filters) if filters is not None else None), parms
    return "", None


def _plain_jpeg(image: pikepdf.Object) -> bool:
    """A JPEG whose decoded pixels are exactly what a viewer shows: no mask, no decode array, gray or RGB."""
    filters, _ = _only_filter(image)
    return (
        filters == "/DCTDecode"
        and str(image.get("/ColorSpace")) in _PLAIN_COLOUR_SPACES
        and int(image.get("/BitsPerComponent", 8)) == 8
        and not bool(image.get("/ImageMask", False))
        and all(key not in image for key in (*_ALTERING_KEYS, "/DecodeParms"))
    )


def _plain_lossless(image: pikepdf.Object) -> tuple[LosslessKind, bool, bytes] | None:
    """How a losslessly stored image's samples are exactly what a viewer shows (kind, whether a 0 sample of
    a 1-bit image is black, the palette of an indexed one), or None.

    A stencil (/ImageMask) paints the fill colour where its samples let it, not a picture of the page;
    ICC profiles and other colour spaces need converting, so such pages are rendered.
    """
    if bool(image.get("/ImageMask", False)) or any(key in image for key in _ALTERING_KEYS if key != "/Decode"):
        return None
    bits, width = int(image.get("/BitsPerComponent", 0)), int(image.Width)
    decode = [float(v) for v in image.get("/Decode", [])]
    filters, parms = _only_filter(image)
    flate = filters in (None, "/FlateDecode")
    palette = _palette(image.get("/ColorSpace"), bits)
    if palette is not None:
        # A palette's lookup is exact; a /Decode remaps indices, which a TIFF's or PNG's palette cannot say.
        if not flate or decode or (parms is not None and not _plain_predictor(parms, 1, bits, width)):
            return None
        return "indexed", True, palette
    colour = str(image.get("/ColorSpace"))
    if colour not in _PLAIN_COLOUR_SPACES:
        return None
    if flate and bits == 8 and not decode:
        if parms is not None and not _plain_predictor(parms, 3 if colour == "/DeviceRGB" else 1, 8, width):
            return None
        return ("rgb" if colour == "/DeviceRGB" else "gray"), True, b""
    if colour != "/DeviceGray" or bits != 1 or decode not in ([], [0.0, 1.0], [1.0, 0.0]):
        return None
    inverted = decode == [1.0, 0.0]
    if flate:
        if parms is not None and not _plain_predictor(parms, 1, 1, width):
            return None
        return "bilevel", not inverted, b""
    if filters == "/JBIG2Decode" and (parms is None or set(parms.keys()) <= {"/JBIG2Globals"}) and jbig2.available():
        return "jbig2", inverted, b""
    if filters == "/CCITTFaxDecode" and parms is not None and _plain_ccitt(parms, width, int(image.Height)):
        return "ccitt", True, b""  # /BlackIs1 and /Decode become the TIFF's photometry (pikepdf)
    return None


def _palette(space: pikepdf.Object | None, bits: int) -> bytes | None:
    """An /Indexed colour space over DeviceGray or DeviceRGB as 2**bits RGB triples, or None (any other
    space, or a lookup shorter than its entries). Indices above /hival show the last entry, as in poppler."""
    if not isinstance(space, pikepdf.Array) or len(space) != 4 or str(space[0]) not in ("/Indexed", "/I"):
        return None
    base = str(space[1])
    if base not in ("/DeviceGray", "/G", "/DeviceRGB", "/RGB") or bits not in (1, 2, 4, 8):
        return None
    components = 3 if base in ("/DeviceRGB", "/RGB") else 1
    hival = int(space[2])
    lookup = space[3]
    table = lookup.read_bytes() if isinstance(lookup, pikepdf.Stream) else bytes(lookup)
    if not 0 <= hival < 256 or len(table) < (hival + 1) * components:
        return None
    entries = [table[i * components:(i + 1) * components] * (3 // components) for i in range(hival + 1)]
    entries += [entries[-1]] * ((1 << bits) - len(entries))
    return b"".join(entries[: 1 << bits])


def _plain_predictor(parms: pikepdf.Object, colours: int, bits: int, columns: int) -> bool:
    """A Flate /DecodeParms qpdf undoes exactly: no predictor, or a PNG one (10-15) describing this image."""
    if set(parms.keys()) - {"/Predictor", "/Colors", "/BitsPerComponent", "/Columns"}:
        return False
    predictor = int(parms.get("/Predictor", 1))
    return predictor == 1 or (
        10 <= predictor <= 15 and int(parms.get("/Colors", 1)) == colours
        and int(parms.get("/BitsPerComponent", 8)) == bits and int(parms.get("/Columns", 1)) == columns
    )


def _plain_ccitt(parms: pikepdf.Object, width: int, height: int) -> bool:
    """CCITT that a TIFF header can carry as it is: group 4; or group 3 (K >= 0, 1-D or 2-D) when its rows
    carry end-of-line codes (/EndOfLine), which a TIFF reader syncs on, while PDF lets G3 leave them out
    (such pages are rendered). Byte-aligned rows (/EncodedByteAlign) are not what TIFF's fill bits are."""
    group4 = int(parms.get("/K", 0)) < 0
    end_of_line = bool(parms.get("/EndOfLine", False))
    return (
        end_of_line != group4
        and int(parms.get("/Columns", 1728)) == width
        and int(parms.get("/Rows", height)) == height
        and not bool(parms.get("/EncodedByteAlign", False))
        and set(parms.keys()) <= {"/K", "/Columns", "/Rows", "/BlackIs1", "/EndOfBlock", "/EndOfLine",
                                  "/EncodedByteAlign", "/DamagedRowsBeforeError"}
    )


def _largest_image(page: pikepdf.Page) -> PlacedImage | None:
    """Follows the page's own content stream (q/Q/cm/Do): images inside forms or patterns are not looked for."""
    xobjects = page.resources.get("/XObject")
    if xobjects is None:
        return None
    box = pikepdf.Rectangle(page.cropbox)
    page_area = max(1.0, box.width * box.height)
    best: PlacedImage | None = None
    for op, operands, ctm in _drawing(page, "q Q cm Do"):
        if op == "Do":
            image = xobjects.get(str(operands[0]))
            if image is None or image.get("/Subtype") != "/Image":
                continue
            a, b, c, d, _, _ = ctm.shorthand
            # The unit square is drawn as the parallelogram (a, b), (c, d): its sides in points.
            across, down = math.hypot(a, b), math.hypot(c, d)
            width, height = int(image.Width), int(image.Height)
            found = PlacedImage(pixels=width * height, dpi=min(width * 72 / across, height * 72 / down),
                                coverage=min(1.0, abs(a * d - b * c) / page_area))
            if best is None or found.pixels > best.pixels:
                best = found
    return best
