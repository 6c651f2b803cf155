"""The document listing on real MariaDB: filters, stable order, offset and cursor paging, full-text search."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import delete, text
from sqlalchemy.dialects import mysql

from common.adapters.db import Document, Job, session_scope
from common.config import Settings
from common.models import TRUSTED, JobStatus
from common.rules import jobs
from common.rules.listing import ListQuery, list_documents, page_statement, recent
from common.rules.listing import page as listing_page
from tests.support import Gateway, private_database

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 10, 9, 0, 0)


@pytest.fixture(params=["walk", "fulltext"])
def search_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A `q` answered by walking the newest documents (a window of 3, so walks also run out) or by the index."""
    if request.param == "walk":
        monkeypatch.setattr(recent, "WINDOW", 3)
    else:
        monkeypatch.setattr(listing_page, "search_recent", lambda _session, _query: None)
    return str(request.param)


@dataclass(frozen=True)
class Row:
    """One document and its job, as a test wants it stored."""

    filename: str
    created_at: datetime
    content_type: str = "application/pdf"
    status: JobStatus = JobStatus.COMPLETED
    text: str | None = None
    document_id: str = ""
    owner_id: str | None = None


@pytest.fixture(scope="module")
def listing_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A private MariaDB with the schema: these tests assert exact pages and totals, so they own the tables."""
    with private_database(tmp_path_factory.mktemp("listing-db"), password="listing-test") as settings:
        yield settings


@pytest.fixture
def db(listing_settings: Settings) -> Settings:
    """The private database, emptied before each test."""
    with session_scope(listing_settings) as session:
        session.execute(delete(Job))
        session.execute(delete(Document))
    return listing_settings


def insert(settings: Settings, rows: list[Row]) -> list[Row]:
    """Store documents + jobs with the given times; returns the rows with their document ids."""
    stored = []
    with session_scope(settings) as session:
        for row in rows:
            document_id = row.document_id or str(uuid.uuid4())
            document = Document(
                id=document_id, filename=row.filename, content_type=row.content_type, size_bytes=1000,
                bucket="documents", object_key=f"uploads/{document_id}/{row.filename}", source="upload",
                source_hash=uuid.uuid4().hex + uuid.uuid4().hex, created_at=row.created_at, owner_id=row.owner_id,
            )
            session.add(document)
            session.flush()
            job = Job(
                id=str(uuid.uuid4()), document_id=document_id, status=row.status, lang="eng", attempts=0,
                version=0, max_attempts=3, pages_done=0, text=row.text, created_at=row.created_at,
                document_created_at=row.created_at, document_owner_id=row.owner_id, updated_at=row.created_at,
            )
            session.add(job)
            session.flush()
            jobs.show(session, document_id, job.id)  # as an upload does
            stored.append(Row(row.filename, row.created_at, row.content_type, row.status, row.text, document_id,
                              row.owner_id))
    return stored


def listing(settings: Settings, **params: Any) -> dict[str, Any]:
    return list_documents(settings, ListQuery.from_params({k: str(v) for k, v in params.items()}, TRUSTED))


def names(page: dict[str, Any]) -> list[str]:
    return [item["filename"] for item in page["items"]]


def walk(settings: Settings, **params: Any) -> list[dict[str, Any]]:
    """Every page of a listing by following next_cursor; returns the pages."""
    pages = [listing(settings, **params)]
    while pages[-1]["next_cursor"]:
        pages.append(listing(settings, **params, cursor=pages[-1]["next_cursor"]))
        assert len(pages) < 1000, "the cursor walk does not end"
    return pages


CATALOGUE = [
    Row("Invoice_2026.pdf", T0, text="INVOICE 4711 total amount due on receipt"),
    Row("invoice%draft.png", T0.replace(hour=23, minute=59, second=59, microsecond=999999), "image/png",
        JobStatus.FAILED),
    Row("receipt.jpeg", T0.replace(day=11, hour=0), "image/jpeg",
        text="Receipt from the Büro café: coffee and cake, thank you"),
    Row("letter.tiff", T0.replace(day=12, hour=12), "image/tiff", JobStatus.PENDING),
    Row("scan_1.pdf", T0.replace(day=9, hour=8), status=JobStatus.PROCESSING),
    Row("scan11.pdf", T0.replace(day=13), text="Contract agreement signed by both parties; invoice follows"),
]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"filename": "INVOICE"}, {"Invoice_2026.pdf", "invoice%draft.png"}),
        ({"filename": "invoice%"}, {"invoice%draft.png"}),
        ({"filename": "%"}, set()),
        ({"filename": "scan_"}, {"scan_1.pdf"}),
        # The start of the name, not any substring: "draft" is inside "invoice%draft.png" only.
        ({"filename": "draft"}, set()),
        ({"filename": "RECEIPT.J"}, {"receipt.jpeg"}),
        ({"content_type": "application/pdf"}, {"Invoice_2026.pdf", "scan_1.pdf", "scan11.pdf"}),
        ({"content_type": "image/*"}, {"invoice%draft.png", "receipt.jpeg", "letter.tiff"}),
        ({"content_type": "IMAGE/PNG"}, {"invoice%draft.png"}),
        ({"content_type": "text/*"}, set()),
        ({"status": "failed"}, {"invoice%draft.png"}),
        ({"status": "pending"}, {"letter.tiff"}),
        ({"date_from": "2026-01-11"}, {"receipt.jpeg", "letter.tiff", "scan11.pdf"}),
        ({"date_to": "2026-01-10"}, {"Invoice_2026.pdf", "invoice%draft.png", "scan_1.pdf"}),
        ({"date_to": "2026-01-11T00:00:00Z"}, {"Invoice_2026.pdf", "invoice%draft.png", "scan_1.pdf"}),
        ({"date_from": "2026-01-10T10:00:00+01:00", "date_to": "2026-01-11T01:00:00+01:00"},
         {"Invoice_2026.pdf", "invoice%draft.png"}),
        ({"q": "invoice"}, {"Invoice_2026.pdf", "scan11.pdf"}),
        ({"q": "coffee"}, {"receipt.jpeg"}),
    ],
    ids=lambda v: urlencode(v) if isinstance(v, dict) else None,
)
def test_each_filter_alone_selects_its_documents(db: Settings, params: dict[str, str], expected: set[str]) -> None:
    """Each filter, on its own, returns exactly the documents it describes, and total counts them."""
    insert(db, CATALOGUE)
    page = listing(db, **params, limit=100)
    assert set(names(page)) == expected
    assert page["total"] == len(expected)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"content_type": "image/*", "status": "completed", "date_from": "2026-01-11"}, ["receipt.jpeg"]),
        ({"filename": "scan", "status": "completed"}, ["scan11.pdf"]),
        ({"q": "invoice", "content_type": "application/pdf", "date_to": "2026-01-12"}, ["Invoice_2026.pdf"]),
        ({"q": "invoice", "status": "failed"}, []),
        ({"filename": "invoice", "date_from": "2026-01-10", "date_to": "2026-01-10", "sort": "created_at_asc"},
         ["Invoice_2026.pdf", "invoice%draft.png"]),
    ],
    ids=lambda v: urlencode(v) if isinstance(v, dict) else None,
)
def test_filters_combine(db: Settings, params: dict[str, str], expected: list[str]) -> None:
    """Filters given together all apply (AND), in list order."""
    insert(db, CATALOGUE)
    page = listing(db, **params)
    assert names(page) == expected and page["total"] == len(expected)


def test_default_order_is_newest_first_and_asc_reverses_it(db: Settings) -> None:
    """created_at_desc is the default; created_at_asc gives the exact reverse."""
    insert(db, CATALOGUE)
    newest_first = names(listing(db, limit=100))
    assert newest_first == [r.filename for r in sorted(CATALOGUE, key=lambda r: r.created_at, reverse=True)]
    assert names(listing(db, limit=100, sort="created_at_asc")) == newest_first[::-1]


@pytest.mark.parametrize("sort", ["created_at_desc", "created_at_asc"])
def test_offset_pages_over_identical_timestamps_neither_repeat_nor_skip(db: Settings, sort: str) -> None:
    """Documents sharing one created_at are ordered by id, so offset pages split them cleanly."""
    rows = insert(db, [Row(f"same-{i:02d}.pdf", T0) for i in range(23)])
    ids = sorted((r.document_id for r in rows), reverse=sort == "created_at_desc")
    seen = [item["document_id"] for offset in range(0, 30, 7)
            for item in listing(db, sort=sort, limit=7, offset=offset)["items"]]
    assert seen == ids


@pytest.mark.parametrize("sort", ["created_at_desc", "created_at_asc"])
def test_cursor_walk_returns_each_document_exactly_once(db: Settings, sort: str) -> None:
    """Following next_cursor visits every document once, in list order, ties included, then stops."""
    # Three to a timestamp, so most page boundaries fall inside a tie.
    rows = insert(db, [Row(f"walk-{i:02d}.pdf", T0 + timedelta(seconds=i // 3)) for i in range(53)])
    pages = walk(db, sort=sort, limit=10)
    assert [len(p["items"]) for p in pages] == [10, 10, 10, 10, 10, 3]
    seen = [item["document_id"] for page in pages for item in page["items"]]
    ordered = sorted(rows, key=lambda r: (r.created_at, r.document_id), reverse=sort == "created_at_desc")
    assert seen == [r.document_id for r in ordered]
    assert pages[0]["total"] == 53 and pages[0]["offset"] == 0
    assert all(p["total"] is None and p["offset"] is None for p in pages[1:])
    assert pages[-1]["next_cursor"] is None


def test_cursor_walk_with_filters_and_changing_page_size(db: Settings) -> None:
    """A filtered walk may change limit between pages and still sees each matching document once."""
    rows = insert(db, [Row(f"mix-{i:02d}.{'png' if i % 2 else 'pdf'}", T0 + timedelta(seconds=i // 4),
                           "image/png" if i % 2 else "application/pdf",
                           JobStatus.FAILED if i % 3 == 0 else JobStatus.COMPLETED) for i in range(40)])
    wanted = sorted((r for r in rows if r.content_type == "image/png" and r.status == JobStatus.COMPLETED),
                    key=lambda r: (r.created_at, r.document_id), reverse=True)
    page = listing(db, content_type="image/*", status="completed", limit=3)
    seen = [item["document_id"] for item in page["items"]]
    for limit in (5, 1, 100):
        if page["next_cursor"] is None:
            break
        page = listing(db, content_type="image/*", status="completed", limit=limit, cursor=page["next_cursor"])
        seen += [item["document_id"] for item in page["items"]]
    assert seen == [r.document_id for r in wanted]


@pytest.mark.parametrize("params", [{"status": "failed"}, {"status": "failed", "sort": "created_at_asc"},
                                    {"filename": "mix-1"}, {"filename": "MIX", "status": "failed"}],
                         ids=lambda v: urlencode(v))
def test_cursor_walks_of_a_rare_status_and_a_name_prefix_see_each_match_once(
        db: Settings, params: dict[str, str]) -> None:
    """The jobs-in-list-order and the name-range plans page by cursor too, ties included, in list order."""
    rows = insert(db, [Row(f"mix-{i:02d}.pdf", T0 + timedelta(seconds=i // 4),
                           status=JobStatus.FAILED if i % 3 == 0 else JobStatus.COMPLETED) for i in range(40)])
    with session_scope(db) as session:
        session.execute(text("ANALYZE TABLE documents, jobs"))
    wanted = sorted((r for r in rows if r.filename.startswith(params.get("filename", "").lower())
                     and params.get("status", r.status.value) == r.status.value),
                    key=lambda r: (r.created_at, r.document_id), reverse=params.get("sort") != "created_at_asc")
    seen = [item["document_id"] for page in walk(db, **params, limit=3) for item in page["items"]]
    assert seen == [r.document_id for r in wanted] and len(seen) > 6


def test_cursor_pages_do_not_shift_when_new_documents_arrive(db: Settings) -> None:
    """Newer uploads between two requests push offset pages along, but never a cursor's next page."""
    insert(db, [Row(f"old-{i:02d}.pdf", T0 + timedelta(minutes=i)) for i in range(20)])
    first = listing(db, limit=5)
    insert(db, [Row(f"new-{i}.pdf", T0 + timedelta(days=1, minutes=i)) for i in range(3)])
    by_cursor = listing(db, limit=5, cursor=first["next_cursor"])
    by_offset = listing(db, limit=5, offset=5)
    assert names(by_cursor) == [f"old-{i:02d}.pdf" for i in range(14, 9, -1)]
    assert names(by_offset)[:3] == names(first)[2:]  # what offset paging repeats


def test_next_cursor_is_null_exactly_when_nothing_follows(db: Settings) -> None:
    """A page that ends the listing has no cursor; offset mode hands out a cursor too."""
    insert(db, [Row(f"n-{i}.pdf", T0 + timedelta(minutes=i)) for i in range(10)])
    assert listing(db, limit=10)["next_cursor"] is None
    assert listing(db, limit=9)["next_cursor"] is not None
    from_offset = listing(db, limit=4, offset=4)
    assert names(listing(db, limit=4, cursor=from_offset["next_cursor"])) == ["n-1.pdf", "n-0.pdf"]
    assert listing(db, filename="absent")["items"] == [] and listing(db, filename="absent")["next_cursor"] is None


def test_search_finds_a_word_and_shows_it_in_a_snippet(db: Settings) -> None:
    """q finds the documents whose text holds the word, each with a short snippet around it."""
    long_text = "Dear customer, " + "please note the terms below. " * 30 + \
        "Reimbursement of 42 EUR was approved. " + "Kind regards. " * 20
    insert(db, CATALOGUE + [Row("claim.pdf", T0.replace(day=14), text=long_text)])
    page = listing(db, q="reimbursement")
    assert names(page) == ["claim.pdf"] and page["total"] == 1
    snippet = page["items"][0]["snippet"]
    assert "Reimbursement of 42 EUR was approved." in snippet
    assert len(snippet) <= 162 and snippet.startswith("…") and snippet.endswith("…")
    assert page["ignored_terms"] == []
    assert "snippet" not in listing(db)["items"][0]


@pytest.mark.parametrize(
    ("q", "expected", "ignored"),
    [
        ("INVOICE", ["scan11.pdf", "Invoice_2026.pdf"], []),
        ("invoice 4711", ["Invoice_2026.pdf"], []),
        ("invoice agreement", ["scan11.pdf"], []),
        ("invoice to be paid", [], ["to", "be"]),
        ("buro", ["receipt.jpeg"], []),
        ("café coffee", ["receipt.jpeg"], []),
        ("the invoice is due", ["Invoice_2026.pdf"], ["the", "is"]),
        ("zeppelin", [], []),
    ],
)
def test_search_requires_every_searchable_word(db: Settings, q: str, expected: list[str], ignored: list[str],
                                              search_path: str) -> None:
    """Every word of 3+ characters must occur (case- and accent-insensitive); shorter ones and stop words are ignored."""
    insert(db, CATALOGUE)
    page = listing(db, q=q)
    assert names(page) == expected and page["ignored_terms"] == ignored


def test_a_reprocessed_document_is_found_by_the_result_it_shows_alone(db: Settings, search_path: str) -> None:
    """A document with two results (a re-process) is found once, by the words of the result it shows; its earlier
    result's words find nothing, and the total counts it once."""
    (row,) = insert(db, [Row("twice.pdf", T0, text="an earlier reading: quince marmalade")])
    insert(db, [Row("other.pdf", T0 + timedelta(hours=1), text="marmalade of another document")])
    with session_scope(db) as session:
        earlier = session.get(Document, row.document_id)
        assert earlier is not None and earlier.job_id is not None
        redone = Job(id=str(uuid.uuid4()), document_id=row.document_id, status=JobStatus.COMPLETED, lang="deu",
                     attempts=1, version=0, max_attempts=3, pages_done=1, text="the new reading: quince jelly",
                     created_at=T0 + timedelta(days=1), document_created_at=T0, updated_at=T0 + timedelta(days=1),
                     document_owner_id=row.owner_id)
        session.add(redone)
        session.flush()
        jobs.show(session, row.document_id, redone.id)  # as the re-process's completion does

    found = listing(db, q="quince")
    assert [(i["document_id"], i["job_id"]) for i in found["items"]] == [(row.document_id, redone.id)]
    assert found["total"] == 1
    assert names(listing(db, q="jelly")) == ["twice.pdf"]
    assert names(listing(db, q="marmalade")) == ["other.pdf"]


@pytest.mark.parametrize("extra", [{}, {"content_type": "image/*"}, {"status": "completed", "filename": "own"}])
def test_a_search_among_one_owner_s_documents_finds_only_theirs(db: Settings, search_path: str,
                                                               extra: dict[str, str]) -> None:
    """A user key's search (its owner's documents only), alone and with filters on documents' own columns: every
    hit of that owner, in list order, and none of another's; the total counts that owner's alone."""
    mine, theirs = "0123456789ab", "ba9876543210"
    rows = insert(db, [Row(f"{'own' if i % 3 else 'other'}-{i:02d}.{'png' if i % 2 else 'pdf'}",
                           T0 + timedelta(minutes=i), "image/png" if i % 2 else "application/pdf",
                           text=f"ledger entry {i}", owner_id=mine if i % 3 else theirs) for i in range(12)])
    params = {"q": "ledger", "owner": mine, **extra}
    expected = [r.filename for r in sorted(rows, key=lambda r: r.created_at, reverse=True) if r.owner_id == mine
                and (extra.get("content_type") != "image/*" or r.content_type.startswith("image/"))
                and r.filename.startswith(extra.get("filename", ""))]
    page = listing(db, **params, limit=50)
    assert names(page) == expected and page["total"] == len(expected)
    assert [item["filename"] for p in walk(db, **params, limit=3) for item in p["items"]] == expected


def test_search_pages_by_cursor(db: Settings) -> None:
    """A search walks by cursor like any listing: every hit once, in list order."""
    rows = insert(db, [Row(f"hit-{i:02d}.pdf", T0 + timedelta(seconds=i // 2),
                           text=f"page {i} mentions the warranty clause" if i % 3 else "nothing relevant here")
                       for i in range(30)])
    pages = walk(db, q="warranty", limit=4)
    seen = [item["document_id"] for page in pages for item in page["items"]]
    hits = sorted((r for r in rows if r.text and "warranty" in r.text), key=lambda r: (r.created_at, r.document_id),
                  reverse=True)
    assert seen == [r.document_id for r in hits]
    assert all("warranty" in item["snippet"] for page in pages for item in page["items"])


def test_common_and_rare_status_plans_give_the_listed_order(db: Settings) -> None:
    """Whichever join order a status filter gets (common: documents first; rare: the status's jobs), pages agree."""
    rows = insert(db, [Row(f"s-{i:02d}.pdf", T0 + timedelta(seconds=i // 2),
                           status=JobStatus.FAILED if i % 5 == 0 else JobStatus.COMPLETED) for i in range(60)])
    with session_scope(db) as session:
        session.execute(text("ANALYZE TABLE documents, jobs"))  # the plan choice reads the row estimate
        plans = {status: "ix_jobs_status_listed" in str(page_statement(session, ListQuery(status=status)).compile(
                     dialect=mysql.dialect())) for status in (JobStatus.COMPLETED, JobStatus.FAILED)}
    # A common status walks documents in list order; a rare one its own jobs in list order.
    assert plans == {JobStatus.COMPLETED: False, JobStatus.FAILED: True}
    for status in (JobStatus.COMPLETED, JobStatus.FAILED):
        seen = [item["document_id"] for page in walk(db, status=status.value, limit=7) for item in page["items"]]
        wanted = sorted((r for r in rows if r.status == status), key=lambda r: (r.created_at, r.document_id),
                        reverse=True)
        assert seen == [r.document_id for r in wanted]


def test_list_over_http_filters_pages_and_refuses_bad_parameters(gateway: Gateway, settings: Settings) -> None:
    """Through the gateway: a filtered cursor walk, and 400 JSON naming a bad or unknown parameter."""
    marker = uuid.uuid4().hex[:12]
    rows = insert(settings, [Row(f"{marker}-http-{i}.png", T0 + timedelta(minutes=i), "image/png",
                                 owner_id=gateway.key_id) for i in range(5)])
    query = {"filename": marker, "content_type": "image/*", "limit": "3"}
    first = gateway.request("GET", "/function/list?" + urlencode(query))
    assert first.status == 200, first.body
    body = first.json()
    assert set(body) == {"items", "total", "total_exact", "limit", "offset", "next_cursor"}
    assert body["total"] == 5 and body["total_exact"] is True and body["limit"] == 3 and body["offset"] == 0
    second = gateway.request("GET", "/function/list?" + urlencode({**query, "cursor": body["next_cursor"]})).json()
    assert second["next_cursor"] is None and second["total"] is None and second["total_exact"] is None
    seen = [item["document_id"] for item in body["items"] + second["items"]]
    assert seen == [r.document_id for r in reversed(rows)]

    for bad, code, named in ((query | {"limit": "1000"}, "bad_request", "limit"),
                             (query | {"colour": "red"}, "bad_request", "colour"),
                             (query | {"date_to": "tomorrow"}, "bad_request", "date_to"),
                             # 1098 + limit 3: past the search bound, a code of its own that names the cursor
                             (query | {"q": "invoice", "offset": "1098"}, "search_too_deep", "next_cursor"),
                             ({"cursor": body["next_cursor"]}, "bad_request", "cursor")):
        reply = gateway.request("GET", "/function/list?" + urlencode(bad))
        assert reply.status == 400, reply.body
        error = reply.json()["error"]
        assert error["code"] == code and named in error["message"], error
    # At the bound (1097 + 3 = 1100) the same search is answered.
    at_bound = gateway.request("GET", "/function/list?" + urlencode(query | {"q": "invoice", "offset": "1097"}))
    assert at_bound.status == 200, at_bound.body


def _warranty_rows() -> list[Row]:
    """40 documents: most say 'warranty' (one accented, one only 'warranties'), with ties on created_at."""
    def text_of(i: int) -> str:
        if i % 7 == 3:
            return "the warranties are listed overleaf"  # the plural: found by the stem too
        if i % 7 == 5:
            return "nothing relevant here"
        return "Garantie: WARRANTY clause, Büro copy" if i % 4 == 0 else f"page {i} mentions the warranty clause"
    return [Row(f"w-{i:02d}.pdf", T0 + timedelta(seconds=i // 2), text=text_of(i)) for i in range(40)]


@pytest.mark.parametrize("params", [{"q": "warranty"}, {"q": "warranty buro"}, {"q": "warranty", "sort": "created_at_asc"},
                                    {"q": "warranty", "status": "completed"}])
def test_a_common_word_walk_gives_the_pages_the_index_gives(db: Settings, monkeypatch: pytest.MonkeyPatch,
                                                             params: dict[str, str]) -> None:
    """Walking the newest documents finds exactly the index's matches, in list order, page after page."""
    rows = insert(db, _warranty_rows())
    monkeypatch.setattr(recent, "WINDOW", 24)
    walked = [item["document_id"] for page in walk(db, **params, limit=4) for item in page["items"]]
    with session_scope(db) as session:
        assert recent.search_recent(session, ListQuery.from_params({**params, "limit": "4"}, TRUSTED)) is not None
    monkeypatch.setattr(listing_page, "search_recent", lambda _session, _query: None)
    indexed = [item["document_id"] for page in walk(db, **params, limit=4) for item in page["items"]]
    assert walked == indexed and len(walked) == sum(
        1 for r in rows if r.text and "warrant" in r.text.lower() and ("buro" not in params["q"] or "Büro" in r.text))


def test_a_common_words_total_is_an_estimate_and_says_so(db: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the walk's window a common word's total is the window's share times the other filters' count."""
    insert(db, [Row(f"e-{i:02d}.pdf", T0 + timedelta(seconds=i),
                    text="invoice total" if i % 2 else "invoice reimbursement") for i in range(40)])
    monkeypatch.setattr(recent, "WINDOW", 10)
    common = listing(db, q="total", limit=4)  # 5 in the window of 10, 4 + 1 wanted: the walk answers
    assert (common["total"], common["total_exact"], len(common["items"])) == (20, False, 4)
    rare = listing(db, q="reimbursement", limit=6)  # 5 in the window, 6 + 1 wanted: the index counts
    assert (rare["total"], rare["total_exact"], len(rare["items"])) == (20, True, 6)
    assert (listing(db)["total"], listing(db)["total_exact"]) == (40, True)
    assert listing(db, q="total", limit=4, cursor=common["next_cursor"])["total_exact"] is None


def test_a_word_absent_from_the_newest_documents_is_found_by_the_index(db: Settings,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A full window without enough matches hands the search to the full-text index, which finds older ones."""
    insert(db, [Row(f"o-{i:02d}.pdf", T0 + timedelta(seconds=i), text="archive" if i < 3 else "current")
                for i in range(30)])
    monkeypatch.setattr(recent, "WINDOW", 10)
    with session_scope(db) as session:
        assert recent.search_recent(session, ListQuery.from_params({"q": "archive"}, TRUSTED)) is None
    page = listing(db, q="archive")
    assert names(page) == ["o-02.pdf", "o-01.pdf", "o-00.pdf"] and (page["total"], page["total_exact"]) == (3, True)


def test_counting_stops_past_the_cap_and_says_so(db: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past TOTAL_CAP matches total is the cap and total_exact false; at or under it, the exact count."""
    insert(db, [Row(f"c-{i:02d}.pdf", T0 + timedelta(seconds=i),
                    status=JobStatus.FAILED if i < 4 else JobStatus.COMPLETED) for i in range(12)])
    monkeypatch.setattr(listing_page, "TOTAL_CAP", 4)
    assert [(p["total"], p["total_exact"]) for p in (listing(db), listing(db, status="completed"),
                                                      listing(db, status="failed"))] == [(4, False), (4, False),
                                                                                         (4, True)]


def test_a_walk_stopped_by_its_sample_estimates_from_the_documents_it_went_through(
        db: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A walk that reads its sample before the window ends takes the share over the documents up to there."""
    insert(db, [Row(f"s-{i:02d}.pdf", T0 + timedelta(seconds=i), text="invoice" if i % 2 else "receipt")
                for i in range(40)])
    monkeypatch.setattr(recent, "WINDOW", 30)
    monkeypatch.setattr(recent, "SAMPLE", 1)  # read 2 + 1 matches: s-39, s-37, s-35, the newest 5 documents
    page = listing(db, q="invoice", limit=2)
    assert names(page) == ["s-39.pdf", "s-37.pdf"] and page["total_exact"] is False
    assert page["total"] == 24  # 3 of 5 documents examined, times 40


@pytest.mark.parametrize("params", [{}, {"content_type": "image/*"}, {"filename": "scan"}, {"status": "completed"},
                                    {"sort": "created_at_asc", "date_from": "2026-01-10"}],
                         ids=lambda v: urlencode(v) or "no filter")
def test_offset_pages_are_slices_of_the_whole_listing(db: Settings, params: dict[str, str]) -> None:
    """Skipping by document ids first (filters on documents alone) or in the join, offset pages cut the same list."""
    insert(db, CATALOGUE + [Row(f"scan-{i}.png", T0 + timedelta(hours=i), "image/png") for i in range(7)])
    whole = names(listing(db, **params, limit=100))
    pages = [names(listing(db, **params, limit=3, offset=start)) for start in range(0, len(whole) + 3, 3)]
    assert [name for page in pages for name in page] == whole and len(whole) > 3


@pytest.mark.parametrize("sort", ["created_at_desc", "created_at_asc"])
def test_deep_offset_pages_of_a_common_word_are_walked_and_are_the_index_pages(
        db: Settings, monkeypatch: pytest.MonkeyPatch, sort: str) -> None:
    """Past the first window the walk's window grows with the offset: the same pages as the index, at every depth."""
    rows = insert(db, _warranty_rows() + [Row(f"x-{i:02d}.pdf", T0 + timedelta(seconds=20 + i // 3),
                                              text=f"warranty number {i}") for i in range(40)])
    monkeypatch.setattr(recent, "WINDOW", 8)
    monkeypatch.setattr(recent, "WANTED_PER_WINDOW", 4)  # offset 20, limit 4: 25 wanted, a window of 56
    hits = sum(1 for r in rows if r.text and "warrant" in r.text.lower())
    offsets = range(0, hits + 4, 4)
    with session_scope(db) as session:
        deep = ListQuery.from_params({"q": "warranty", "offset": "20", "limit": "4", "sort": sort}, TRUSTED)
        assert recent.search_recent(session, deep) is not None
    walked = [listing(db, q="warranty", offset=o, limit=4, sort=sort) for o in offsets]
    monkeypatch.setattr(listing_page, "search_recent", lambda _session, _query: None)
    indexed = [listing(db, q="warranty", offset=o, limit=4, sort=sort) for o in offsets]
    assert [(names(w), w["next_cursor"]) for w in walked] == [(names(i), i["next_cursor"]) for i in indexed]
    assert sum(len(w["items"]) for w in walked) == hits
    assert all("warrant" in item["snippet"].lower() for w in walked for item in w["items"])


def test_a_rare_word_deep_offset_goes_to_the_index_after_the_first_window(
        db: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deep page of a word the first WINDOW documents show to be rare is not walked further: the index answers."""
    rows = insert(db, [Row(f"r-{i:02d}.pdf", T0 + timedelta(seconds=i), text="archive" if i % 10 == 0 else "current")
                       for i in range(60)])
    monkeypatch.setattr(recent, "WINDOW", 10)
    monkeypatch.setattr(recent, "WANTED_PER_WINDOW", 2)  # offset 2, limit 1: 4 wanted, a window of 20 documents
    walks: list[Any] = []
    walk = recent.search_recent

    def counted(session: Any, query: ListQuery) -> Any:
        walks.append(query)
        return walk(session, query)

    monkeypatch.setattr(listing_page, "search_recent", counted)
    with session_scope(db) as session:
        # 1 match in the first 10 documents: 2 projected in the window of 20, fewer than the 4 wanted.
        assert walk(session, ListQuery.from_params({"q": "archive", "offset": "2", "limit": "1"}, TRUSTED)) is None
    page = listing(db, q="archive", offset=2, limit=1)
    archived = [r.filename for r in sorted(rows, key=lambda r: r.created_at, reverse=True) if r.text == "archive"]
    assert names(page) == archived[2:3] and (page["total"], page["total_exact"]) == (6, True) and len(walks) == 1


def _deep_rows() -> list[Row]:
    """60 documents of two owners, three types and mixed statuses, with ties on created_at."""
    types = ("application/pdf", "image/png", "image/jpeg")
    statuses = (JobStatus.COMPLETED, JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.COMPLETED, JobStatus.PENDING)
    return [Row(f"{'scan' if i % 3 else 'page'}-{i:02d}.{types[i % 3].split('/')[1]}", T0 + timedelta(seconds=i // 2),
                types[i % 3], statuses[i % 5], owner_id="0123456789ab" if i % 4 else "ba9876543210")
            for i in range(60)]


@pytest.mark.parametrize("params", [
    {"status": "completed"}, {"status": "completed", "sort": "created_at_asc"},
    {"status": "completed", "content_type": "image/*"}, {"status": "completed", "content_type": "image/png"},
    {"status": "completed", "owner": "0123456789ab"}, {"status": "completed", "filename": "scan"},
    {"status": "failed"}, {"filename": "scan"}, {"filename": "SCAN", "owner": "0123456789ab"},
    {"filename": "scan", "content_type": "image/*", "sort": "created_at_asc"},
    {"status": "failed", "sort": "created_at_asc"}, {"status": "failed", "content_type": "image/*"},
    {"status": "pending", "owner": "0123456789ab"}, {"filename": "scan", "status": "failed"},
], ids=lambda v: urlencode(v))
def test_deep_offset_pages_of_status_and_filename_filters_are_slices_of_the_whole_listing(
        db: Settings, params: dict[str, str]) -> None:
    """The walk for keys (common status), a rare status's jobs in list order and a file name prefix's range cut
    the same list as the first page."""
    rows = insert(db, _deep_rows())
    with session_scope(db) as session:
        session.execute(text("ANALYZE TABLE documents, jobs"))
    whole = names(listing(db, **params, limit=100))
    pages = [listing(db, **params, limit=4, offset=start) for start in range(0, len(whole) + 4, 4)]
    assert [name for page in pages for name in names(page)] == whole and len(whole) >= 8
    assert all(page["next_cursor"] is None for page in pages if len(page["items"]) < 4)

    def kept(r: Row) -> bool:
        family = params.get("content_type", "")
        return ((params.get("status") is None or r.status.value == params["status"])
                and r.filename.lower().startswith(params.get("filename", "").lower())
                and (not family or r.content_type == family or family.endswith("/*")
                     and r.content_type.startswith(family[:-1]))
                and params.get("owner", r.owner_id) == r.owner_id)

    expected = sorted((r for r in rows if kept(r)), key=lambda r: (r.created_at, r.document_id),
                      reverse=params.get("sort") != "created_at_asc")
    assert whole == [r.filename for r in expected]


def test_deep_offset_pages_name_the_index_that_walks_them(db: Settings) -> None:
    """A common status walks the index with its filter's documents in list order, a rare one its jobs in list
    order; a file name prefix reads the range of its index (an owner's listing: the owner's)."""
    insert(db, _deep_rows())
    with session_scope(db) as session:
        def sql(**params: str) -> str:
            query = ListQuery.from_params({**params, "offset": "8"}, TRUSTED)
            return str(page_statement(session, query).compile(dialect=mysql.dialect()))
        # The covering indexes hold each walked document's type and job: no document row is read.
        assert "FORCE INDEX (ix_documents_created_id_type_job)" in sql(status="completed", content_type="image/*")
        assert "FORCE INDEX (ix_documents_created_id_type_job)" in sql(status="completed")
        assert "FORCE INDEX (ix_documents_type_created_id)" in sql(status="completed", content_type="image/png")
        assert "FORCE INDEX (ix_documents_owner_created_id_type_job)" in sql(status="completed", owner="0123456789ab",
                                                                            content_type="image/*")
        assert "FORCE INDEX (ix_jobs_status)" in sql(status="completed")
        assert "FORCE INDEX (ix_documents_filename_created_id)" in sql(filename="scan")
        assert "FORCE INDEX (ix_documents_owner_filename_created_id)" in sql(filename="scan", owner="0123456789ab")
        assert "FORCE INDEX (ix_jobs_status_listed)" in sql(status="failed")
        assert "INDEX" not in sql() and "INDEX" not in sql(content_type="image/*")


@pytest.mark.parametrize(("q", "expected"), [
    ("bean", {"beans.pdf", "bean.pdf"}), ("beans", {"beans.pdf", "bean.pdf"}),
    ("invoice", {"invoiced.pdf", "invoices.pdf"}), ("invoicing", {"invoiced.pdf", "invoices.pdf"}),
    ("studies", {"study.pdf"}),
])
def test_plurals_and_simple_inflections_find_each_other(db: Settings, search_path: str, q: str,
                                                         expected: set[str]) -> None:
    """A searched word finds the words that start with its English stem, by the walk and by the index alike;
    never the inside of a word ('reinvoiced')."""
    insert(db, [Row(name, T0 + timedelta(minutes=i), text=text) for i, (name, text) in enumerate([
        ("beans.pdf", "a sack of coffee beans"), ("bean.pdf", "one bean counter"),
        ("invoiced.pdf", "we invoiced the customer"), ("invoices.pdf", "three invoices attached"),
        ("reinvoiced.pdf", "costs reinvoiced to the tenant"), ("study.pdf", "a study of costs"),
    ])])
    page = listing(db, q=q, limit=100)
    assert set(names(page)) == expected
    assert all(item["snippet"] for item in page["items"])
