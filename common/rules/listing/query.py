"""The listing's SQL: the WHERE of a filter, the keyset after a cursor, a page's SELECT and its COUNT."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select
from sqlalchemy.orm import Session

from common.adapters.db import Document, Job
from common.adapters.db.dialect import in_written_order, matches_words, through_index
from common.rules.listing.cursor import Position
from common.rules.listing.params import ListQuery
from common.rules.listing.plan import status_is_common


def _filters(query: ListQuery) -> list[ColumnElement[bool]]:
    """The WHERE of both the page and its count (the cursor's keyset is added to the page only)."""
    conditions = document_filters(query)
    if query.status is not None:
        conditions.append(Job.status == query.status)
    if query.search is not None:
        conditions.append(matches_words(Job.text, query.search.boolean_query))
    return conditions


def document_filters(query: ListQuery) -> list[ColumnElement[bool]]:
    """The filters on documents' own columns: what an index of documents can serve, no job needed."""
    conditions: list[ColumnElement[bool]] = []
    if query.owner is not None:
        conditions.append(Document.owner_id == query.owner)
    if query.filename is not None:
        # The start of the name: a range of ix_documents_filename_created_id (a substring has no index).
        conditions.append(Document.filename.startswith(query.filename, autoescape=True))
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


def after(position: Position, descending: bool, key: tuple[Any, Any] = (Document.created_at, Document.id)
          ) -> ColumnElement[bool]:
    """(created_at, id) strictly after the position in list order, spelled so both servers use a range; `key`
    names the columns that hold them (the jobs' copy: Job.document_created_at, Job.document_id).

    The redundant `created_at <= t` gives the optimizer a range on ix_documents_created_id. The row
    constructor `(created_at, id) < (t, i)` would not: MariaDB 10.11 plans it as an index scan from the
    first row, filtered, so a deep page would cost as much as a deep offset.
    """
    listed_at, document_id = key
    t, i = position.created_at, position.document_id
    if descending:
        return and_(listed_at <= t, or_(listed_at < t, document_id < i))
    return and_(listed_at >= t, or_(listed_at > t, document_id > i))


def page_statement(session: Session, query: ListQuery) -> Select[Any]:
    """The page's SELECT (one row more than the limit), with the join order the filter calls for."""
    if query.search is not None:
        return _matched_statement(query)
    if query.filename is not None:
        return _named_statement(query)
    common = status_is_common(session, query)
    if query.search is None and query.status is not None and not common:
        return _rare_status_statement(query)
    if query.after is None and query.offset > 0 and query.search is None:
        if query.status is None:
            return _skipping_statement(query)
        return _walking_statement(query)
    statement = (
        select(*PAGE_COLUMNS)
        .join(Job, JOB_OF_DOCUMENT)
        .where(*_filters(query))
        .order_by(*list_order(query))
        .limit(query.limit + 1)  # one more than shown: whether a next page exists, without a count
    )
    if common:
        # Join order as written: documents by the ordering index, each one's job checked, stop at the limit.
        statement = in_written_order(statement)
    if query.after is not None:
        return statement.where(after(query.after, query.descending))
    return statement.offset(query.offset)


def _matched_statement(query: ListQuery) -> Select[Any]:
    """A page of a `q` search by the full-text index: the shown jobs that match, sorted and counted on jobs alone,
    then the page's rows.

    The match reads each hit's job row; everything the page needs to find, order and count its hits is there
    (shown, status, the document's key, created_at and owner), so no hit's document is read unless a filter on
    a document's name or type asks for it (a word in 1 % of a million texts: p95 51 ms in bench/list_bench.py,
    against 113 ms joining every hit's document). `matches` counts every hit, for the total, in the same pass.
    """
    assert query.search is not None
    conditions, order = _listed_on_jobs(query)
    conditions += [Job.shown.is_(True), matches_words(Job.text, query.search.boolean_query)]
    if query.status is not None:
        conditions.append(Job.status == query.status)
    if query.owner is not None:
        conditions.append(Job.document_owner_id == query.owner)
    ids = select(Job.document_id.label("page_id"), func.count().over().label("matches")).where(*conditions)
    # The date window and the owner are on jobs already; a name or a type needs the hit's document.
    own = document_filters(replace(query, owner=None, created_from=None, created_before=None))
    if own:
        ids = ids.join(Document, Document.id == Job.document_id).where(*own)
    ids = ids.order_by(*order).limit(query.limit + 1).offset(0 if query.after is not None else query.offset)
    hits = ids.subquery()
    return _rows_of(hits, query, hits.c.matches)


def _listed_on_jobs(query: ListQuery) -> tuple[list[ColumnElement[bool]], tuple[Any, Any]]:
    """The date window, the cursor's keyset and the list order, spelled on the jobs' copy of their document's key
    (document_created_at, document_id): for plans that find a page's jobs before any document."""
    listed_at, document_id = Job.document_created_at, Job.document_id
    conditions: list[ColumnElement[bool]] = []
    if query.created_from is not None:
        conditions.append(listed_at >= query.created_from)
    if query.created_before is not None:
        conditions.append(listed_at < query.created_before)
    if query.after is not None:
        conditions.append(after(query.after, query.descending, (listed_at, document_id)))
    order = (listed_at.desc(), document_id.desc()) if query.descending else (listed_at.asc(), document_id.asc())
    return conditions, order


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
        .limit(query.limit + 1).offset(query.offset)
    )
    return _rows_of(ids.subquery(), query)


def _named_statement(query: ListQuery) -> Select[Any]:
    """A page of a file name prefix: the names with that start by their index, sorted, then the page's rows.

    Only the matches are read (a range of the index, which also holds each one's place in list order) and
    their keys sorted, wherever they sit in the list: 'scan-01', a tenth of a million documents and the
    oldest, would cost a walk in list order the 900,000 newer ones first. A user key's listing has its own
    index, owner first. A status is checked per match, on its job's index entry (ix_jobs_status: status, id).
    """
    ids = select(Document.id.label("page_id")).where(*document_filters(query))
    if query.status is not None:
        ids = ids.join(Job, Job.id == Document.job_id).where(Job.status == query.status)
    if query.after is not None:
        ids = ids.where(after(query.after, query.descending))
    ordered = "ix_documents_owner_filename_created_id" if query.owner is not None else "ix_documents_filename_created_id"
    ids = through_index(
        ids.order_by(*list_order(query)).limit(query.limit + 1).offset(0 if query.after is not None else query.offset),
        Document, ordered)
    if query.status is not None:
        ids = through_index(in_written_order(ids), Job, "ix_jobs_status")
    return _rows_of(ids.subquery(), query)


def _rare_status_statement(query: ListQuery) -> Select[Any]:
    """A page of a rare status: its jobs in list order (ix_jobs_status_listed), each checked to be its document's
    shown job and against the other filters, stopping at offset + limit + 1.

    The jobs carry their document's created_at, so no sort is needed at any depth: offset 4,000 of 50,000
    failed jobs among 1M documents reads about 4,000 of them (collecting and sorting all of them took 4.8 s).
    """
    # The date window as a range of the index itself, not only a check of each document.
    conditions, order = _listed_on_jobs(query)
    conditions += [Job.status == query.status, *document_filters(query)]
    ids = (
        select(Document.id.label("page_id"))
        .select_from(Job)
        .join(Document, and_(Document.id == Job.document_id, Document.job_id == Job.id))
        .where(*conditions)
        .order_by(*order)
        .limit(query.limit + 1).offset(0 if query.after is not None else query.offset)
    )
    # Jobs first, in the index's order; each document read by its key.
    ids = through_index(in_written_order(ids), Job, "ix_jobs_status_listed")
    return _rows_of(ids.subquery(), query)


def _walking_statement(query: ListQuery) -> Select[Any]:
    """An offset page of a common status: walk documents in list order for the keys alone, then join the page.

    The rows skipped cost a job lookup each, so the walk reads no more than it must: each document's type and
    job from a covering index in list order (no document row read), the job through ix_jobs_status (status,
    id), which answers "has this job the status" from the index without the job's wide row, and no page
    columns (offset 10,000 of 100k documents: 0.16 s with whole rows, 0.06 s keys from the rows, 0.025 s keys
    from the covering index). Documents first, in list order, as status_is_common decided.
    """
    ids = (
        select(Document.id.label("page_id"))
        # The document's shown job by its key alone: the second term of JOB_OF_DOCUMENT would need the job's row.
        .join(Job, Job.id == Document.job_id)
        .where(*document_filters(query), Job.status == query.status)
        .order_by(*list_order(query))
        .limit(query.limit + 1).offset(query.offset)
    )
    ids = through_index(in_written_order(ids), Job, "ix_jobs_status")
    # The index that has the filtered documents in list order; without the hint a deep offset makes MariaDB
    # 10.11 prefer reading the whole table and sorting it (0.15 s at 100k documents), and a family of types
    # (image/*) a range of several types on ix_documents_type_created_id, which is not in list order either.
    # The covering ones test the type in the index and hand over job_id. An exact type keeps its own index:
    # it reads only that type's rows, where the covering walk would step over every other type's entries
    # (cheaper for a common type, far dearer for a rare one).
    if query.owner is not None:
        ordered = "ix_documents_owner_created_id_type_job"
    elif query.content_type is not None and not query.content_type.endswith("/*"):
        ordered = "ix_documents_type_created_id"
    else:
        ordered = "ix_documents_created_id_type_job"
    ids = through_index(ids, Document, ordered)
    return _rows_of(ids.subquery(), query)


def _rows_of(ids: Any, query: ListQuery, *extra: Any) -> Select[Any]:
    """The page's rows for a subquery of its document ids (`page_id`), in list order, with `extra` columns of
    the subquery's (a search's count of its hits)."""
    return (
        select(*PAGE_COLUMNS, *extra)
        .join(ids, ids.c.page_id == Document.id)
        .join(Job, JOB_OF_DOCUMENT)
        .order_by(*list_order(query))
    )
