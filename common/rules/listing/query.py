"""The listing's SQL: the WHERE of a filter, the keyset after a cursor, a page's SELECT and its COUNT."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.dialects.mysql import match
from sqlalchemy.orm import Session

from common.adapters.db import Document, Job
from common.rules.listing.cursor import Position
from common.rules.listing.params import ListQuery
from common.rules.listing.plan import status_is_common


def _filters(query: ListQuery) -> list[ColumnElement[bool]]:
    """The WHERE of both the page and its count (the cursor's keyset is added to the page only)."""
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
    if query.status is not None:
        conditions.append(Job.status == query.status)
    if query.created_from is not None:
        conditions.append(Document.created_at >= query.created_from)
    if query.created_before is not None:
        conditions.append(Document.created_at < query.created_before)
    if query.search is not None:
        conditions.append(match(Job.text.expression, against=query.search.boolean_query).in_boolean_mode())
    return conditions


def _after(position: Position, descending: bool) -> ColumnElement[bool]:
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
    columns: list[Any] = [
        Document.id, Document.filename, Document.content_type, Document.size_bytes, Document.source,
        Document.created_at, Document.owner_id, Job.id.label("job_id"), Job.status, Job.page_count,
    ]
    order = (Document.created_at.desc(), Document.id.desc()) if query.descending else (
        Document.created_at.asc(), Document.id.asc())
    statement = (
        select(*columns)
        .join(Job, Job.id == Document.job_id)
        .where(*_filters(query))
        .order_by(*order)
        .limit(query.limit + 1)  # one more than shown: whether a next page exists, without a count
    )
    if status_is_common(session, query):
        # Join order as written: documents by the ordering index, each one's job checked, stop at the limit.
        statement = statement.prefix_with("STRAIGHT_JOIN", dialect="mysql")
    if query.after is not None:
        return statement.where(_after(query.after, query.descending))
    return statement.offset(query.offset)


def count_statement(query: ListQuery) -> Select[Any]:
    """COUNT over the filter, joining jobs only when the filter needs them.

    A document shows one job (documents.job_id); older jobs of a re-processed document must not
    count, so jobs are always reached through that pointer.
    """
    statement = select(func.count()).select_from(Document)
    if query.status is not None or query.search is not None:
        statement = statement.join(Job, Job.id == Document.job_id)
    return statement.where(*_filters(query))
