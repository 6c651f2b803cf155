"""A PDF's JBIG2 page image decoded by jbig2dec into a 1-bit TIFF for tesseract, when jbig2dec is installed.

jbig2dec decodes the page's bitmap and nothing else; rendering the page instead decodes it too, then
draws it as 8-bit gray, eight times the bytes, which tesseract thresholds back to 1 bit.
"""

from __future__ import annotations

import functools
import re
import shutil
from pathlib import Path

from common.engine.pdf import stored_files
from common.engine.run import run
from common.errors import OcrError

_PBM_HEADER = re.compile(rb"P4\s+(\d+)\s+(\d+)\s")


@functools.cache
def available() -> bool:
    """Whether jbig2dec is installed (local-stack/bootstrap installs it); without it JBIG2 pages are rendered."""
    return shutil.which("jbig2dec") is not None


def decode(page: bytes, globals_: bytes | None, out: Path, width: int, height: int, black_is_0: bool, dpi: int,
           timeout: float) -> Path | None:
    """The embedded JBIG2 stream `page` (with its /JBIG2Globals, decoded) as an uncompressed 1-bit TIFF at
    `out`; None when jbig2dec fails or decodes another size than the PDF says: render the page then.

    A decoded 1 is black (PBM's convention and JBIG2's), so the TIFF says WhiteIsZero; `black_is_0`
    (/Decode [1 0]) turns it.
    """
    stream, shared, pbm = out.with_suffix(".jb2"), out.with_suffix(".jbg"), out.with_suffix(".pbm")
    try:
        stream.write_bytes(page)
        inputs = [str(stream)]
        if globals_ is not None:
            shared.write_bytes(globals_)
            inputs = [str(shared), str(stream)]
        try:
            run(["jbig2dec", "--embedded", "--quiet", "--format", "pbm", "--output", str(pbm), *inputs],
                timeout=timeout)
        except OcrError:
            return None  # a timeout is OcrError too: poppler gets its own go at the page
        data = pbm.read_bytes() if pbm.exists() else b""
    finally:
        for path in (stream, shared):
            path.unlink(missing_ok=True)
        pbm.unlink(missing_ok=True)
    header = _PBM_HEADER.match(data)
    size = (width + 7) // 8 * height
    if header is None or (int(header.group(1)), int(header.group(2))) != (width, height):
        return None
    pixels = data[header.end():header.end() + size]
    if len(pixels) < size:
        return None
    photometric = stored_files.BLACK_IS_ZERO if black_is_0 else stored_files.WHITE_IS_ZERO
    out = out.with_suffix(".tif")
    out.write_bytes(stored_files.tiff(pixels, width, height, 1, 1, photometric, stored_files.UNCOMPRESSED, dpi))
    return out
