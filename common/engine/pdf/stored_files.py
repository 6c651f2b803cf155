"""A PDF image's stored samples wrapped, undecoded, in the smallest TIFF or PNG file tesseract reads.

A Flate stream is a zlib stream, which is what a TIFF strip with Deflate compression holds and, when
the stream carries PNG predictors (a filter byte before each row), what a PNG's IDAT holds. Passing it
on as it is spares decoding it in Python and writing the raw pixels out (about 45 ms of an A4 gray
page, 3.5% of its OCR): leptonica inflates it once, as it would a PNG or TIFF scan given to the CLI.
"""

from __future__ import annotations

import struct
import zlib

# TIFF tag values used here.
DEFLATE = 8  # Adobe Deflate: a zlib stream, as PDF's /FlateDecode
UNCOMPRESSED = 1
WHITE_IS_ZERO, BLACK_IS_ZERO, RGB, PALETTE = 0, 1, 2, 3  # photometric interpretation
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_INCH_IN_METRES = 0.0254


def tiff(data: bytes, width: int, height: int, bits: int, samples: int, photometric: int, compression: int,
         dpi: int, palette: bytes = b"") -> bytes:
    """A little-endian TIFF of one strip holding `data` as it is: one image file directory, then the
    resolution, the per-sample bit depths of a colour image and the colour map of a palette one (from
    `palette`, 2**bits RGB triples), then the strip."""
    tags = 13 if palette else 12
    directory = 8
    resolution = directory + 2 + tags * 12 + 4
    depths = resolution + 16
    colour_map = depths + (2 * samples if samples > 1 else 0)
    strip = colour_map + 2 * len(palette)

    def entry(tag: int, kind: int, count: int, value: int) -> bytes:
        # SHORT values sit left-justified in the 4-byte value field; LONGs and offsets fill it.
        packed = struct.pack("<HH", value, 0) if kind == 3 and count == 1 else struct.pack("<I", value)
        return struct.pack("<HHI", tag, kind, count) + packed

    short, long_, rational = 3, 4, 5
    # TIFF's colour map is every red, then every green, then every blue, 16 bits each.
    levels = [palette[i + channel] * 257 for channel in range(3) for i in range(0, len(palette), 3)]
    header = b"".join((
        b"II*\x00", struct.pack("<I", directory), struct.pack("<H", tags),
        entry(256, long_, 1, width), entry(257, long_, 1, height),
        entry(258, short, samples, bits if samples == 1 else depths),
        entry(259, short, 1, compression), entry(262, short, 1, photometric),
        entry(273, long_, 1, strip), entry(277, short, 1, samples), entry(278, long_, 1, height),
        entry(279, long_, 1, len(data)),
        entry(282, rational, 1, resolution), entry(283, rational, 1, resolution + 8),
        entry(296, short, 1, 2),  # resolution in inches
        entry(320, short, len(levels), colour_map) if palette else b"",
        struct.pack("<I", 0),  # no further directory: one page
        struct.pack("<IIII", dpi, 1, dpi, 1),
        struct.pack(f"<{samples}H", *[bits] * samples) if samples > 1 else b"",
        struct.pack(f"<{len(levels)}H", *levels),
    ))
    assert len(header) == strip
    return header + data


def png(idat: bytes, width: int, height: int, bits: int, colour_type: int, dpi: int, palette: bytes = b"") -> bytes:
    """A PNG whose one IDAT chunk is `idat`: a zlib stream of rows each led by its PNG filter byte,
    exactly a PDF Flate stream with a PNG /Predictor (10-15). `palette`: RGB triples (colour type 3)."""
    per_metre = round(dpi / _INCH_IN_METRES)
    return b"".join((
        _PNG_SIGNATURE,
        _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bits, colour_type, 0, 0, 0)),
        _chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)),
        _chunk(b"PLTE", palette) if palette else b"",
        _chunk(b"IDAT", idat),
        _chunk(b"IEND", b""),
    ))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
