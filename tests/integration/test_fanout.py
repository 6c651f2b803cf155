"""A PDF with more pages than OCR_CHUNK_PAGES (8 in stack.yml) is read in chunks, each an invocation of its own,
and put together by the last one; a chunk that fails for good fails the job with its code."""

from __future__ import annotations

import io
from typing import Any

import pikepdf
import pytest
from sqlalchemy import func, select

from common.adapters.db import JobChunk, Page, session_scope
from common.config import Settings
from common.rules.chunks import runs_prefix
from tests.support import Gateway, scanned_pdf

pytestmark = pytest.mark.integration


def page_lines(n: int) -> list[str]:
    return [f"PAGE {n:02d} of the fanned out document"]


def test_a_long_pdf_is_read_in_chunks_and_assembled_in_order(gateway: Gateway, settings: Settings, s3: Any) -> None:
    pages = 19
    reply = gateway.upload(scanned_pdf([page_lines(n) for n in range(1, pages + 1)]), "nineteen.pdf")
    assert reply.status == 202, reply.body
    job_id = reply.json()["job_id"]
    done = gateway.wait_final(job_id, timeout=300)
    assert done["status"] == "completed", done
    assert (done["page_count"], done["pages_done"]) == (pages, pages)
    # The text in page order, each page once.
    positions = [done["text"].find(f"PAGE {n:02d}") for n in range(1, pages + 1)]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), positions
    with session_scope(settings) as session:
        chunk_rows = session.execute(select(JobChunk.first_page, JobChunk.last_page, JobChunk.status)
                                     .where(JobChunk.job_id == job_id).order_by(JobChunk.number)).all()
        stored = session.execute(select(func.count(), func.count(func.distinct(Page.page_number)))
                                 .where(Page.job_id == job_id)).one()
    assert [tuple(r) for r in chunk_rows] == [(1, 8, "done"), (9, 16, "done"), (17, 19, "done")]
    assert tuple(stored) == (pages, pages)
    # One searchable PDF and one hOCR for the whole document, the runs cleaned up.
    pdf = gateway.follow_link(done["outputs"]["searchable_pdf"])
    with pikepdf.open(io.BytesIO(pdf.data)) as searchable:
        assert len(searchable.pages) == pages
    hocr = gateway.follow_link(done["outputs"]["hocr"])
    assert hocr.data.count(b"class='ocr_page'") == pages
    assert not list(s3.list_objects(settings.s3_bucket, prefix=runs_prefix(settings, job_id), recursive=True))


def test_a_chunk_failing_for_good_fails_the_job_with_its_code(gateway: Gateway) -> None:
    """One page of ten is far past MAX_PAGE_PIXELS: its chunk fails, and with it the job, with that code."""
    good = scanned_pdf([page_lines(n) for n in range(1, 11)])
    with pikepdf.open(io.BytesIO(good)) as pdf:
        pdf.pages[9].mediabox = pikepdf.Array([0, 0, 14400, 14400])  # 200 x 200 inches: gigapixels at 300 DPI
        out = io.BytesIO()
        pdf.save(out)
    reply = gateway.upload(out.getvalue(), "huge-last-page.pdf")
    assert reply.status == 202
    done = gateway.wait_final(reply.json()["job_id"], timeout=300)
    assert done["status"] == "failed" and done["error"]["code"] == "image_too_large", done
