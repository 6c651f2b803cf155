"""A search for a common word: the newest documents walked in list order instead of the full-text index.

InnoDB reads a word's whole posting list for every MATCH, so a word most documents contain costs in
proportion to the table (every hit read, joined and sorted) even for a page of ten. When the word is
common, the page is near the start of the list: walking documents in list order and testing each text
finds it after a few dozen rows. The walk is bounded by a window of the next documents: WINDOW of them for
the first pages, growing with the matches a deeper offset page needs before its own (offset + limit + 1, up
to MAX_WANTED), so the share of texts that makes a word "common" does not rise with the offset. When the
window holds too few matches the word is rare, and the full-text index is the cheap way (None below); the
first WINDOW documents already tell, so a rare word does not pay for a deep window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal, or_, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import Boolean

from common.adapters.db import Document, Job
from common.adapters.db.dialect import if_else, in_written_order
from common.rules.listing.cursor import Position
from common.rules.listing.params import MAX_SEARCH_DEPTH, ListQuery, Search
from common.rules.listing.query import JOB_OF_DOCUMENT, PAGE_COLUMNS, after, document_filters, list_order
from common.rules.listing.snippets import contains_words

# Documents a first page's walk may examine: a page of ten is found for any word in about one text in fifty
# or more; a rarer word has few enough hits for the full-text index, and a walk that finds too little wastes
# little.
WINDOW = 500
# Deeper pages: one more WINDOW of documents for each WANTED_PER_WINDOW matches wanted (offset + limit + 1), so
# the share that makes a word common stays about one in five at every depth instead of rising with the offset.
WANTED_PER_WINDOW = 100
# Matches a walk reads at least: the share behind an estimated total rests on this many.
SAMPLE = 100
# The deepest match a walk looks for. `q` pages deeper than this are refused in offset mode (params), since
# neither way is cheap there for a common word: the walk grows with the offset, the index with the word's hits.
MAX_WANTED = MAX_SEARCH_DEPTH + 1


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
    """LIKE per word's stems (collation-aware, so accents and case fold as in the index) narrows; REGEXP confirms
    that a word of the text starts with a stem, as the index's prefix search does.

    REGEXP (word boundaries, case-insensitive under the column's collation) does not fold accents, so
    a LIKE match it does not confirm is checked in Python with the snippets' folding.
    """
    likes = [or_(*[Job.text.contains(stem, autoescape=True) for stem in stems]) for stems in search.stems]
    confirmed = and_(*[Job.text.regexp_match(rf"\b({'|'.join(stems)})") for stems in search.stems])
    return likes, confirmed


def search_recent(session: Session, query: ListQuery) -> RecentPage | None:
    """The page of a `q` search by walking the window in list order; None when the index should answer."""
    wanted = query.offset + query.limit + 1
    if query.search is None or wanted > MAX_WANTED:
        return None
    walk = _Walk(session, query, need=max(wanted, SAMPLE))
    window = WINDOW * -(-wanted // WANTED_PER_WINDOW)  # ceil
    bound, examined = walk.nth(WINDOW), WINDOW
    walk.fill(bound)
    if walk.exhausted and bound is not None and len(walk.found) < wanted and window > WINDOW:
        # The first WINDOW documents tell the word's share: go on only if the whole window should hold enough.
        if len(walk.found) * window < wanted * WINDOW:
            return None
        bound, examined = walk.nth(window), window
        walk.fill(bound)
    complete = bound is None and walk.exhausted
    if len(walk.found) < wanted and not complete:
        return None  # a rare word in the newest documents: the full-text index reads few hits
    if not walk.exhausted:
        examined = walk.examined()
    shown = [row.id for row in walk.found[query.offset:wanted]]
    rows: list[Any] = []
    if shown:
        # The page's rows (one more than the limit, if any) by their keys, in list order.
        rows = list(session.execute(
            select(*PAGE_COLUMNS).join(Job, JOB_OF_DOCUMENT).where(Document.id.in_(shown)).order_by(*list_order(query))
        ).all())
    return RecentPage(rows=rows, share=len(walk.found) / max(1, examined), complete=complete)


class _Walk:
    """Documents in list order from where the query starts, each one's shown job tested for the words: the
    matches found so far (keys in list order), the last row read, and whether the current window ran out."""

    def __init__(self, session: Session, query: ListQuery, need: int) -> None:
        assert query.search is not None
        self.session, self.query, self.need, self.search = session, query, need, query.search
        self.start = document_filters(query)
        if query.after is not None:
            self.start.append(after(query.after, query.descending))
        likes, confirmed = _word_test(self.search)
        # Only unconfirmed texts travel; a confirmed one is NULL here.
        self.unconfirmed = if_else(type_coerce(confirmed, Boolean), literal(None), Job.text).label("unconfirmed")
        self.matching = [*likes] + ([Job.status == query.status] if query.status is not None else [])
        self.found: list[Any] = []
        self.last: Any = None  # where the walk resumes, and up to where it examined documents
        self.exhausted = False  # the current window has no further candidate

    def nth(self, n: int) -> Any:
        """The n-th document from the start, by the ordering index alone (no job, no text read); None past the end."""
        return self.session.execute(
            select(Document.created_at, Document.id).where(*self.start).order_by(*list_order(self.query))
            .offset(n - 1).limit(1)
        ).first()

    def fill(self, bound: Any) -> None:
        """Read on up to `bound` (None: the end) until `need` matches are found or the window runs out."""
        self.exhausted = False
        while len(self.found) < self.need:
            # A LIKE hit inside a word (e.g. "reinvoiced") is dropped: read more until enough are confirmed.
            limit = self.need - len(self.found)
            resume = Position(self.last.created_at, self.last.id) if self.last is not None else self.query.after
            fetched = self._candidates(resume, bound, limit)
            if fetched:
                self.last = fetched[-1]
            self.found.extend(row for row in fetched
                              if row.unconfirmed is None or contains_words(row.unconfirmed, self.search.stems))
            if len(fetched) < limit:
                self.exhausted = True
                return

    def examined(self) -> int:
        """The documents the walk went through: those from the start up to the last row it read."""
        return int(self.session.execute(
            select(func.count()).select_from(Document).where(*self.start, _within(self.last, self.query.descending))
        ).scalar_one())

    def _candidates(self, resume: Position | None, bound: Any, limit: int) -> list[Any]:
        """Up to `limit` texts that may hold the words, after `resume` and not past `bound`, in list order."""
        conditions = [*self.start, *self.matching]
        if resume is not None:
            conditions.append(after(resume, self.query.descending))
        if bound is not None:
            conditions.append(_within(bound, self.query.descending))
        # Keys and the unconfirmed text only: the page's own columns are read for its rows alone. Join order as
        # written: documents by the ordering index, each one's job read by its key; the walk stops at the limit.
        return list(self.session.execute(in_written_order(
            select(Document.created_at, Document.id, self.unconfirmed)
            .join(Job, JOB_OF_DOCUMENT)
            .where(*conditions)
            .order_by(*list_order(self.query))
            .limit(limit)
        )).all())
