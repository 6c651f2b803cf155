"""An image's pages made ready for tesseract: each frame checked against the limits, turned upright and written out."""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from common.engine.limits import OcrLimits
from common.engine.page.read import Raster
from common.errors import CorruptDocument, ImageTooLarge, TooManyPages

_EXIF_ORIENTATION = 0x0112


def image_rasters(path: Path, workdir: Path, limits: OcrLimits) -> list[Raster]:
    """Every frame of a TIFF, the first of a GIF/WebP animation; EXIF rotation applied.

    An upright gray or colour JPEG is given to tesseract as uploaded: it reads JPEG directly and
    embeds it in the page's PDF as it is, so the searchable PDF keeps the photo's own bytes.
    Pillow refuses a decompression bomb from the header (Image.MAX_IMAGE_PIXELS, set by the engine).
    """
    try:
        with Image.open(path) as image:
            animated_gif = image.format in ("GIF", "WEBP")
            as_uploaded = (image.format == "JPEG" and image.mode in ("L", "RGB")
                           and image.getexif().get(_EXIF_ORIENTATION, 1) == 1)
            rasters: list[Raster] = []
            for index, frame in enumerate(ImageSequence.Iterator(image)):
                if index >= limits.max_pages:
                    raise TooManyPages(f"the image has more than {limits.max_pages} frames (MAX_PAGES)")
                pixels = frame.width * frame.height
                if pixels > limits.max_page_pixels:
                    raise ImageTooLarge(
                        f"page {index + 1} has {pixels} pixels; the limit is {limits.max_page_pixels} (MAX_PAGE_PIXELS)"
                    )
                # Scanners record their resolution; a bare image is taken to be a 300 DPI scan, and so
                # is one claiming under 100 (72 and 96 are what cameras and editors write by default).
                dpi = frame.info.get("dpi", (0, 0))[0] or image.info.get("dpi", (0, 0))[0]
                dpi = int(round(float(dpi))) if dpi and float(dpi) >= 100 else 300
                if as_uploaded:
                    frame.load()  # decoded once all the same: a truncated file is refused here
                    out = workdir / "frame-00001.jpg"
                    shutil.copyfile(path, out)
                else:
                    upright = ImageOps.exif_transpose(frame.copy())
                    mode = "L" if upright.mode in ("1", "L", "LA", "I;16") else "RGB"
                    out = workdir / f"frame-{index + 1:05d}.tif"
                    # compression="raw" said, not inherited: a fax frame's info keeps group3/group4,
                    # which Pillow cannot encode once the frame is no longer 1-bit.
                    upright.convert(mode).save(out, format="TIFF", dpi=(dpi, dpi), compression="raw")
                rasters.append(Raster(number=index + 1, path=out, dpi=dpi, from_pdf=False))
                if animated_gif:
                    break
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(f"the image exceeds {limits.max_page_pixels} pixels (MAX_PAGE_PIXELS)") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise CorruptDocument("the image is damaged and cannot be decoded", detail=str(e)) from e
    if not rasters:
        raise CorruptDocument("the image has no frames")
    return rasters
