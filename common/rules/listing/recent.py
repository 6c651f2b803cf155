"""A search for a common word: the newest documents walked in list order instead of the full-text index.

InnoDB reads a word's whole posting list for every MATCH, so a word most documents contain costs in
proportion to the table (every hit read, joined and sorted) even for a page of ten. When the word is
common, the page is near the start of the list: walking documents in list order and testing each text
finds it after a few dozen rows. The walk is bounded by a window of the next WINDOW documents; when the
window holds too few matches the word is rare, and the full-text index is the cheap way (None below).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal, or_, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import Boolean

from common.adapters.db import Document, Job
from common.rules.listing.params import ListQuery, Search
from common.rules.listing.query import JOB_OF_DOCUMENT, PAGE_COLUMNS, after, document_filters, list_order
from common.rules.listing.snippets import contains_words

# Documents a walk may examine: a page of ten is found for any word in about one text in fifty or more; a
# rarer word has few enough hits for the full-text index, and a walk that finds too little wastes little.
WINDOW = 500
# Matches a walk reads at least: the share behind an estimated total rests on this many.
SAMPLE = 100
# Deeper offset pages (offset + limit past this) go to the full-text index: the walk would grow with them.
MAX_WANTED = 101


@dataclass(frozen=True)
class RecentPage:
    rows: list[Any]  # the page's rows in list order, one more than the limit when a next page exists
    share: float  # matching documents / documents examined, for the estimated total
    complete: bool  # the walk reached the end of the filtered list: it saw every match


def _within(bound: Any, descending: bool) -> ColumnElement[bool]:
    """(created_at, id) not past the bound in list order: the window's far end, inclusive."""
    t, i = bound.created_at, bound.id
    if descending:
        return and_(Document.created_at >= t, or_(Document.created_at > t, Document.id >= i))
    return and_(Document.created_at <= t, or_(Document.created_at < t, Document.id <= i))


def _word_test(search: Search) -> tuple[list[ColumnElement[bool]], ColumnElement[bool]]:
    """LIKE per word (collation-aware, so accents and case fold as in the index) narrows; REGEXP confirms.

    REGEXP (word boundaries, case-insensitive under the column's collation) does not fold accents, so
    a LIKE match it does not confirm is checked in Python with the snippets' folding.
    """
    likes = [Job.text.contains(word, autoescape=True) for word in search.words]
    confirmed = and_(*[Job.text.regexp_match(rf"\b{word}\b") for word in search.words])
    return likes, confirmed


def search_recent(session: Session, query: ListQuery) -> RecentPage | None:
    """The page of a `q` search by walking the window in list order; None when the index should answer."""
    if query.search is None or query.offset + query.limit + 1 > MAX_WANTED:
        return None
    wanted = query.offset + query.limit + 1
    start = document_filters(query)
    if query.after is not None:
        start.append(after(query.after, query.descending))
    # The window's last document, by the ordering index alone (no job, no text read).
    bound: Any = session.execute(
        select(Document.created_at, Document.id).where(*start).order_by(*list_order(query))
        .offset(WINDOW - 1).limit(1)
    ).first()
    likes, confirmed = _word_test(query.search)
    conditions = [*start, *likes]
    if bound is not None:
        conditions.append(_within(bound, query.descending))
    if query.status is not None:
        conditions.append(Job.status == query.status)
    # Only unconfirmed texts travel; a confirmed one is NULL here.
    unconfirmed = func.if_(type_coerce(confirmed, Boolean), literal(None), Job.text).label("unconfirmed")
    fetch = max(2 * wanted, SAMPLE)
    fetched = session.execute(
        select(*PAGE_COLUMNS, unconfirmed)
        .join(Job, JOB_OF_DOCUMENT)
        .where(*conditions)
        .order_by(*list_order(query))
        .limit(fetch)
        # Join order as written: documents by the ordering index, each one's job read by its key; the
        # walk stops at the limit.
        .prefix_with("STRAIGHT_JOIN", dialect="mysql")
    ).all()
    found: list[Any] = [row for row in fetched
                        if row.unconfirmed is None or contains_words(row.unconfirmed, query.search.words)]
    stopped_early = len(fetched) == fetch
    complete = bound is None and not stopped_early
    if len(found) < wanted and not complete:
        return None  # a rare word in the newest documents: the full-text index reads few hits
    if stopped_early:
        # Documents the walk went through: those of the window up to the last row it fetched.
        last = fetched[-1]
        examined = session.execute(
            select(func.count()).select_from(Document).where(*start, _within(last, query.descending))
        ).scalar_one()
    else:
        examined = WINDOW
    return RecentPage(rows=found[query.offset:wanted], share=len(found) / max(1, examined), complete=complete)
