"""One page of the listing: run the page and count statements, attach snippets and the next cursor."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.adapters.db import Job, read
from common.adapters.db.dialect import planned_rows
from common.config import Settings
from common.rules.listing.cursor import Position, encode_cursor
from common.rules.listing.params import ListQuery
from common.rules.listing.query import count_statement, page_statement
from common.rules.listing.recent import RecentPage, search_recent
from common.rules.listing.snippets import snippet_of
from common.rules.status import iso


# Past this many matches `total` says "at least this many": an exact count would read every match, and
# a filter on jobs (status) joins each one.
TOTAL_CAP = 1_000
# An estimated total (a common word's) multiplies the walk's share by the documents the other filters select.
# Those are counted up to this many (an index range, a few ms); past it the server's own estimate of the
# range stands in, as counting a million entries would cost more than the page (80 ms at 1M documents).
BASE_COUNT_CAP = 50_000


def list_documents(settings: Settings, query: ListQuery) -> dict[str, Any]:
    """One page in list order, the cursor of the next one, and the total in offset mode (on the read replica
    when one is set: adapters/db/sessions.read)."""
    found = read(settings, lambda session: _read_page(session, query), purpose="list")
    return _body(query, found)


@dataclass(frozen=True)
class _Found:
    rows: list[Any]  # the page's rows, at most the limit
    more: bool  # another item follows
    total: int | None
    exact: bool | None
    texts: dict[str, str | None]  # the shown jobs' texts, for snippets (with q only)


def _read_page(session: Session, query: ListQuery) -> _Found:
    recent = search_recent(session, query)
    matches: int | None = None
    if recent is not None:
        rows = recent.rows
    else:
        rows = list(session.execute(page_statement(session, query)).all())
        # A search by the full-text index reads and sorts every match anyway: its page counts them in the same
        # pass (query.matches), where a COUNT of its own would run the full-text search a second time.
        if query.search is not None and query.after is None and rows:
            matches = int(rows[0].matches)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    total: int | None
    exact: bool | None
    if matches is not None:
        total, exact = min(matches, TOTAL_CAP), matches <= TOTAL_CAP
    else:
        total, exact = _total(session, query, recent)
    texts: dict[str, str | None] = {}
    if query.search is not None and rows:
        # Fetched apart from the page: a MEDIUMTEXT carried through the page's sort would force an
        # on-disk temporary table for every hit, not just the ones shown.
        shown = [row.job_id for row in rows]
        texts = dict(session.execute(select(Job.id, Job.text).where(Job.id.in_(shown))).all())
    return _Found(rows, more, total, exact, texts)


def _body(query: ListQuery, found: _Found) -> dict[str, Any]:
    rows, more, total, exact, texts = found.rows, found.more, found.total, found.exact, found.texts
    items = []
    for row in rows:
        item: dict[str, Any] = {
            "document_id": row.id,
            "job_id": row.job_id,
            "filename": row.filename,
            "content_type": row.content_type,
            "size_bytes": row.size_bytes,
            "source": row.source,
            "status": row.status.value,
            "page_count": row.page_count,
            "created_at": iso(row.created_at),
            "owner_id": row.owner_id,
        }
        if query.search is not None:
            item["snippet"] = snippet_of(texts.get(row.job_id) or "", tuple(
                stem for stems in query.search.stems for stem in stems))
        items.append(item)
    next_cursor = encode_cursor(query, Position(rows[-1].created_at, rows[-1].id)) if more else None
    body: dict[str, Any] = {
        "items": items,
        "total": total,
        "total_exact": exact,
        "limit": query.limit,
        "offset": None if query.after is not None else query.offset,
        "next_cursor": next_cursor,
    }
    if query.search is not None:
        body["ignored_terms"] = list(query.search.ignored)
    return body


def _total(session: Session, query: ListQuery, recent: RecentPage | None) -> tuple[int | None, bool | None]:
    """The total and whether it is exact; both None in cursor mode.

    Counting stops past TOTAL_CAP (then `total` is the cap: at least that many). A common word's matches
    are not counted at all (that is reading them all): the share of matches among the documents the walk
    examined, times the documents the other filters select, stands in for it.
    """
    if query.after is not None:
        return None, None
    if recent is not None and not recent.complete:
        # Documents' own filters only: an index range, no job read.
        return round(recent.share * _documents_selected(session, replace(query, search=None, status=None))), False
    counted = int(session.execute(count_statement(query, TOTAL_CAP)).scalar_one())
    return min(counted, TOTAL_CAP), counted <= TOTAL_CAP


def _documents_selected(session: Session, query: ListQuery) -> int:
    """How many documents the filters on documents' own columns select: counted up to BASE_COUNT_CAP, the
    optimizer's row estimate for the range past it (it feeds an estimated total only)."""
    counted = int(session.execute(count_statement(query, BASE_COUNT_CAP)).scalar_one())
    if counted <= BASE_COUNT_CAP:
        return counted
    return max(planned_rows(session, count_statement(query)), counted)
