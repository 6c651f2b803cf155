"""The listing's SQL: the WHERE of a filter, the keyset after a cursor, a page's SELECT and its COUNT."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select
from sqlalchemy.dialects.mysql import match
from sqlalchemy.orm import Session

from common.adapters.db import Document, Job
from common.rules.listing.cursor import Position
from common.rules.listing.params import ListQuery
from common.rules.listing.plan import status_is_common


def _filters(query: ListQuery) -> list[ColumnElement[bool]]:
    """The WHERE of both the page and its count (the cursor's keyset is added to the page only)."""
    conditions = document_filters(query)
    if query.status is not None:
        conditions.append(Job.status == query.status)
    if query.search is not None:
        conditions.append(match(Job.text.expression, against=query.search.boolean_query).in_boolean_mode())
    return conditions


def document_filters(query: ListQuery) -> list[ColumnElement[bool]]:
    """The filters on documents' own columns: what an index of documents can serve, no job needed."""
    conditions: list[ColumnElement[bool]] = []
    if query.owner is not None:
        conditions.append(Document.owner_id == query.owner)
    if query.filename is not None:
        conditions.append(Document.filename.contains(query.filename, autoescape=True))
    if query.content_type is not None:
        kind, subtype = query.content_type.split("/")
        if subtype == "*":
            # A prefix LIKE is a range on ix_documents_type_created_id.
            conditions.append(Document.content_type.startswith(f"{kind}/", autoescape=True))
        else:
            conditions.append(Document.content_type == query.content_type)
    if query.created_from is not None:
        conditions.append(Document.created_at >= query.created_from)
    if query.created_before is not None:
        conditions.append(Document.created_at < query.created_before)
    return conditions


def list_order(query: ListQuery) -> tuple[Any, Any]:
    if query.descending:
        return Document.created_at.desc(), Document.id.desc()
    return Document.created_at.asc(), Document.id.asc()


# A document's shown job. The second term says nothing new (that job is always one of the document's), but
# it lets a plan that starts from jobs (full-text, a rare status) reach each document by its primary key:
# documents.job_id has no index, and without it MariaDB 10.11 scans documents once per matching job.
JOB_OF_DOCUMENT = and_(Job.id == Document.job_id, Job.document_id == Document.id)

# What a page shows of each document and its job.
PAGE_COLUMNS: tuple[Any, ...] = (
    Document.id, Document.filename, Document.content_type, Document.size_bytes, Document.source,
    Document.created_at, Document.owner_id, Job.id.label("job_id"), Job.status, Job.page_count,
)


def after(position: Position, descending: bool) -> ColumnElement[bool]:
    """(created_at, id) strictly after the position in list order, spelled so both servers use a range.

    The redundant `created_at <= t` gives the optimizer a range on ix_documents_created_id. The row
    constructor `(created_at, id) < (t, i)` would not: MariaDB 10.11 plans it as an index scan from the
    first row, filtered, so a deep page would cost as much as a deep offset.
    """
    t, i = position.created_at, position.document_id
    if descending:
        return and_(Document.created_at <= t, or_(Document.created_at < t, Document.id < i))
    return and_(Document.created_at >= t, or_(Document.created_at > t, Document.id > i))


def page_statement(session: Session, query: ListQuery) -> Select[Any]:
    """The page's SELECT (one row more than the limit), with the join order the filter calls for."""
    if query.after is None and query.offset > 0 and query.status is None and query.search is None:
        return _skipping_statement(query)
    statement = (
        select(*PAGE_COLUMNS)
        .join(Job, JOB_OF_DOCUMENT)
        .where(*_filters(query))
        .order_by(*list_order(query))
        .limit(query.limit + 1)  # one more than shown: whether a next page exists, without a count
    )
    if status_is_common(session, query):
        # Join order as written: documents by the ordering index, each one's job checked, stop at the limit.
        statement = statement.prefix_with("STRAIGHT_JOIN", dialect="mysql")
    if query.after is not None:
        return statement.where(after(query.after, query.descending))
    return statement.offset(query.offset)


def count_statement(query: ListQuery, cap: int | None = None) -> Select[Any]:
    """COUNT over the filter, joining jobs only when the filter needs them; with `cap`, of at most cap + 1 rows.

    A document shows one job (documents.job_id); older jobs of a re-processed document must not
    count, so jobs are always reached through that pointer.
    """
    columns = func.count() if cap is None else literal(1)
    matching = select(columns).select_from(Document)
    if query.status is not None or query.search is not None:
        matching = matching.join(Job, JOB_OF_DOCUMENT)
    matching = matching.where(*_filters(query))
    if cap is None:
        return matching
    # Stop reading at cap + 1: whether there are more than cap is all the answer needs past it.
    return select(func.count()).select_from(matching.limit(cap + 1).subquery())


def _skipping_statement(query: ListQuery) -> Select[Any]:
    """An offset page of a filter on documents alone: skip by document ids, then join the page's rows only.

    Skipping inside the full join, MariaDB 10.11 prefers to read and sort every row once the offset is
    deep (offset 10,000: a filesort of the whole table); the ids alone come off the ordering index.
    """
    ids = (
        select(Document.id.label("page_id")).where(*document_filters(query)).order_by(*list_order(query))
        .limit(query.limit + 1).offset(query.offset).subquery()
    )
    return (
        select(*PAGE_COLUMNS)
        .join(ids, ids.c.page_id == Document.id)
        .join(Job, JOB_OF_DOCUMENT)
        .order_by(*list_order(query))
    )
