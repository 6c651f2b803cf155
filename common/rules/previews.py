"""Page previews for the web page's document view: one page of the original as a small PNG, made once and kept."""

from __future__ import annotations

import tempfile
from pathlib import Path

from common.adapters import storage
from common.config import Settings
from common.engine.run import run
from common.errors import CorruptDocument, ObjectMissing, PageNotFound
from common.logging import get_logger
from common.models import Principal
from common.rules import downloads, outputs

log = get_logger()

# Low: a preview is looked at beside the text, not read closely; 100 dpi makes an A4 page 827 x 1169 pixels.
PREVIEW_DPI = 100
# An image page is scaled down to at most this many pixels on its longer side.
PREVIEW_MAX_SIDE = 1200
RENDER_TIMEOUT_SECONDS = 60.0


def preview_key(settings: Settings, job_id: str, number: int) -> str:
    # Under the job's results: deleting the document deletes its previews with them.
    return outputs.result_key(settings, job_id, f"preview/page-{number:05d}.png")


def preview(settings: Settings, document_or_job_id: str, number: int, caller: Principal) -> storage.ObjectStream:
    """Page `number` (from 1) of the job's original as a PNG, rendered on first request and kept in MinIO.

    The picture has the page's shape (the crop box of a PDF page, the image itself), so a word's box in
    page pixels is placed on it by scaling alone.
    """
    job, document = downloads.job_of(settings, document_or_job_id, caller)
    if number < 1 or (job.page_count is not None and number > job.page_count):
        raise PageNotFound(f"job {job.id} has no page {number}" +
                           (f" (it has {job.page_count})" if job.page_count is not None else ""))
    key = preview_key(settings, job.id, number)
    try:
        return storage.open_object(settings, settings.s3_bucket, key)
    except ObjectMissing:
        pass
    with tempfile.TemporaryDirectory(prefix="preview-") as folder:
        original = Path(folder) / "original"
        storage.download_to(settings, document.bucket, document.object_key, original)
        made = Path(folder) / "preview.png"
        if document.content_type == "application/pdf":
            _render_pdf_page(original, number, made)
        else:
            _render_image_page(original, number, made)
        storage.put_file(settings, key, made, "image/png")
    log.info("preview.made", job_id=job.id, page=number)
    return storage.open_object(settings, settings.s3_bucket, key)


def _render_pdf_page(path: Path, number: int, out: Path) -> None:
    root = out.with_suffix("")
    run(["pdftoppm", "-r", str(PREVIEW_DPI), "-f", str(number), "-l", str(number), "-cropbox", "-png",
         "-singlefile", str(path), str(root)], timeout=RENDER_TIMEOUT_SECONDS, failure=CorruptDocument)
    if not out.exists():
        raise PageNotFound(f"the PDF has no page {number}")


def _render_image_page(path: Path, number: int, out: Path) -> None:
    # Here, not at the top: the documents function starts without Pillow and loads it for its first preview.
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            try:
                image.seek(number - 1)
            except EOFError as e:
                raise PageNotFound(f"the image has no page {number}") from e
            page = image.convert("L" if image.mode in ("1", "L", "I;16") else "RGB")
            page.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
            page.save(out, "PNG", optimize=False)
    except (UnidentifiedImageError, OSError) as e:
        raise CorruptDocument("the original image cannot be read for a preview", detail=str(e)) from e
