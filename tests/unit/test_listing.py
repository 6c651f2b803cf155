"""The listing's parameters, cursors and snippets: every rule that needs no database."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import pytest
from werkzeug.datastructures import MultiDict

from common.errors import BadRequest, SearchTooDeep
from common.models import TRUSTED, JobStatus
from common.rules.listing import DEFAULT_LIMIT, ListQuery, Position, decode_cursor, encode_cursor, snippet_of
from common.rules.listing.params import MAX_SEARCH_DEPTH
from common.rules.listing.snippets import contains_words

POSITION = Position(datetime(2026, 1, 31, 12, 0, 0, 123456), "6c1f1c2e-6d8a-4c51-9a5e-2f1f8e0b6a11")


def refused(params: dict[str, str] | MultiDict[str, str]) -> str:
    """The message of the BadRequest the parameters are refused with."""
    with pytest.raises(BadRequest) as info:
        ListQuery.from_params(params, TRUSTED)
    assert info.value.http_status == 400 and info.value.code == "bad_request"
    return info.value.message


def test_no_parameters_mean_the_first_ten_newest() -> None:
    """Without parameters the listing is the first 10 documents, newest first, unfiltered."""
    query = ListQuery.from_params({}, TRUSTED)
    assert query == ListQuery()
    assert (query.limit, query.offset, query.sort, query.after) == (DEFAULT_LIMIT, 0, "created_at_desc", None)


@pytest.mark.parametrize(
    ("params", "field", "expected"),
    [
        ({"limit": "100"}, "limit", 100),
        ({"limit": "1"}, "limit", 1),
        ({"offset": "10000"}, "offset", 10000),
        ({"sort": "created_at_asc"}, "sort", "created_at_asc"),
        ({"status": "failed"}, "status", JobStatus.FAILED),
        ({"filename": "50%_off"}, "filename", "50%_off"),
        ({"content_type": "Application/PDF"}, "content_type", "application/pdf"),
        ({"content_type": "image/*"}, "content_type", "image/*"),
        ({"content_type": "application/vnd.ms-excel"}, "content_type", "application/vnd.ms-excel"),
        ({"date_from": "2026-01-31"}, "created_from", datetime(2026, 1, 31)),
        ({"date_from": "2026-01-31T12:00:00+02:00"}, "created_from", datetime(2026, 1, 31, 10)),
        ({"date_to": "2026-01-31"}, "created_before", datetime(2026, 2, 1)),
        ({"date_to": "2026-01-31T12:00:00.5Z"}, "created_before", datetime(2026, 1, 31, 12, 0, 0, 500000)),
        ({"date_to": "9999-12-31"}, "created_before", None),
        ({"limit": ""}, "limit", DEFAULT_LIMIT),
    ],
)
def test_valid_parameters_are_read(params: dict[str, str], field: str, expected: object) -> None:
    """Each parameter is parsed to its typed value: dates to naive UTC bounds, media types lower-cased."""
    assert getattr(ListQuery.from_params(params, TRUSTED), field) == expected


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "-5"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "99999999999999999999999999"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"limit": "١٠"}, "limit"),  # Arabic-Indic digits: int() would take them, the contract does not
        ({"offset": "-1"}, "offset"),
        ({"offset": "1000000001"}, "offset"),
        ({"sort": "newest"}, "sort"),
        ({"sort": "created_at"}, "sort"),
        ({"status": "done"}, "status"),
        ({"content_type": "image"}, "content_type"),
        ({"content_type": "*/*"}, "content_type"),
        ({"content_type": "image/png; charset=binary"}, "content_type"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_from": "2026-13-01"}, "date_from"),
        ({"date_to": "2026-01-31T12:00:00"}, "date_to"),  # a time without an offset is ambiguous
        ({"date_to": "31.01.2026"}, "date_to"),
        ({"date_from": "2026-02-01", "date_to": "2026-01-31"}, "date_from"),
        ({"date_from": "2026-01-31T12:00:00Z", "date_to": "2026-01-31T12:00:00Z"}, "date_from"),
        ({"filename": "x" * 256}, "filename"),
        ({"q": "a an of the"}, "q"),
        ({"q": "!!"}, "q"),
        ({"q": "word " * 60}, "q"),
        ({"q": " ".join(f"word{i}" for i in range(21))}, "q"),
        ({"cursor": "not a cursor"}, "cursor"),
        ({"cursor": "x" * 600}, "cursor"),
        ({"page": "2"}, "page"),
        ({"limit": "5", "stauts": "failed"}, "stauts"),
    ],
)
def test_invalid_parameters_are_refused_by_name(params: dict[str, str], named: str) -> None:
    """Every malformed, out-of-range or unknown parameter is a 400 whose message names it."""
    assert named in refused(params)


def test_unknown_parameters_are_all_named_with_the_accepted_ones() -> None:
    """Refusing unknown parameters names each of them and lists what is accepted."""
    message = refused({"page": "2", "per_page": "5", "limit": "5"})
    assert "page, per_page" in message and "content_type" in message


def test_a_repeated_parameter_is_refused() -> None:
    """status=a&status=b is ambiguous, so it is a 400 rather than a silent pick of one."""
    assert "status" in refused(MultiDict([("status", "pending"), ("status", "failed")]))


def test_a_search_offset_page_deeper_than_the_bound_is_refused_with_the_cursor_named() -> None:
    """With q, offset + limit past MAX_SEARCH_DEPTH is a 400 search_too_deep naming the bound and next_cursor; up to
    it, accepted."""
    with pytest.raises(SearchTooDeep) as info:
        ListQuery.from_params({"q": "invoice", "offset": str(MAX_SEARCH_DEPTH - 9), "limit": "10"}, TRUSTED)
    assert info.value.http_status == 400 and info.value.code == "search_too_deep"
    message = info.value.message
    assert f"{MAX_SEARCH_DEPTH}" in message and "next_cursor" in message and "offset" in message
    at_bound = ListQuery.from_params({"q": "invoice", "offset": str(MAX_SEARCH_DEPTH - 100), "limit": "100"}, TRUSTED)
    assert at_bound.offset + at_bound.limit == MAX_SEARCH_DEPTH
    # Without q an offset that deep is a plain offset page.
    assert ListQuery.from_params({"offset": str(MAX_SEARCH_DEPTH * 10)}, TRUSTED).offset == MAX_SEARCH_DEPTH * 10


def test_an_offset_sent_with_a_plus_decoded_as_space_gets_a_hint() -> None:
    """An unencoded '+02:00' arrives as ' 02:00'; the 400 says to send %2B."""
    assert "%2B" in refused({"date_from": "2026-01-31T12:00:00 02:00"})


def test_date_to_as_date_includes_the_whole_day_and_as_datetime_excludes_itself() -> None:
    """date_to=2026-01-31 ends at the next midnight; date_to=<datetime> is an exclusive bound."""
    by_day = ListQuery.from_params({"date_from": "2026-01-31", "date_to": "2026-01-31"}, TRUSTED)
    assert (by_day.created_from, by_day.created_before) == (datetime(2026, 1, 31), datetime(2026, 2, 1))
    by_time = ListQuery.from_params({"date_to": "2026-01-31T00:00:00-01:00"}, TRUSTED)
    assert by_time.created_before == datetime(2026, 1, 31, 1)


@pytest.mark.parametrize(
    ("q", "words", "ignored"),
    [
        ("Invoice 4711", ("invoice", "4711"), ()),
        ("invoice no 12", ("invoice",), ("no", "12")),
        ("the invoice of the year", ("invoice", "year"), ("the", "of")),
        ('+invoice -paid "total*" (due)', ("invoice", "paid", "total", "due"), ()),
        ("Büro büro BÜRO", ("büro",), ()),
        ("o'brien", ("brien",), ("o",)),
    ],
)
def test_search_words_are_what_the_fulltext_index_holds(q: str, words: tuple[str, ...],
                                                        ignored: tuple[str, ...]) -> None:
    """q keeps words of 3+ characters that are not stop words; the rest is reported as ignored."""
    search = ListQuery.from_params({"q": q}, TRUSTED).search
    assert search is not None
    assert (search.words, search.ignored) == (words, ignored)


def test_search_operators_cannot_reach_the_boolean_query() -> None:
    """Every word is required (as its stem's prefix, the only operator we add) and operators typed by the user
    are only separators."""
    search = ListQuery.from_params({"q": 'paid -"overdue" <total> ~fee @3 due*'}, TRUSTED).search
    assert search is not None
    assert search.boolean_query == "+paid* +overdu* +total* +fee* +due*"


def test_cursor_round_trips_and_is_opaque_url_safe_text() -> None:
    """A cursor decodes, for the same filters, to the position it was made from (microseconds kept)."""
    query = ListQuery.from_params({"status": "completed", "q": "invoice"}, TRUSTED)
    cursor = encode_cursor(query, POSITION)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor(cursor, query) == POSITION
    parsed = ListQuery.from_params({"status": "completed", "q": "invoice", "cursor": cursor, "limit": "50"}, TRUSTED)
    assert parsed.after == POSITION and parsed.limit == 50


@pytest.mark.parametrize(
    "other",
    [
        {"status": "failed"},
        {"status": "completed"},
        {"status": "completed", "q": "invoice", "sort": "created_at_asc"},
        {"status": "completed", "q": "receipt"},
        {"status": "completed", "q": "invoice", "content_type": "image/*"},
        {"status": "completed", "q": "invoice", "date_from": "2026-01-01"},
        {"status": "completed", "q": "invoice", "filename": "scan"},
    ],
)
def test_cursor_used_with_other_filters_or_sort_is_refused(other: dict[str, str]) -> None:
    """A cursor only continues the listing that issued it: other filters or sort are a 400 naming cursor."""
    cursor = encode_cursor(ListQuery.from_params({"status": "completed", "q": "invoice"}, TRUSTED), POSITION)
    message = refused({**other, "cursor": cursor})
    assert "cursor" in message and "filters" in message


def _edited(cursor: str, change: dict[str, object]) -> str:
    body = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    body.update(change)
    return base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: c[:-6],
        lambda c: c[:20] + ("A" if c[20] != "A" else "B") + c[21:],
        lambda c: _edited(c, {"i": "00000000-0000-0000-0000-000000000000"}),
        lambda c: _edited(c, {"t": "2020-01-01T00:00:00.000000"}),
        lambda c: _edited(c, {"v": 2}),
        lambda c: base64.urlsafe_b64encode(b"[1, 2, 3]").decode(),
        lambda c: base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
    ids=["truncated", "byte-flipped", "id-edited", "time-edited", "version", "not-an-object", "not-utf8"],
)
def test_damaged_or_edited_cursor_is_refused(damage: object) -> None:
    """Truncated, corrupted or hand-edited cursors fail their checksum and are a 400 naming cursor."""
    query = ListQuery()
    cursor = encode_cursor(query, POSITION)
    assert "cursor" in refused({"cursor": damage(cursor)})  # type: ignore[operator]


def test_cursor_and_offset_cannot_be_combined() -> None:
    """A cursor already fixes where the page starts, so a non-zero offset beside it is a 400."""
    cursor = encode_cursor(ListQuery(), POSITION)
    message = refused({"cursor": cursor, "offset": "10"})
    assert "cursor" in message and "offset" in message
    assert ListQuery.from_params({"cursor": cursor, "offset": "0"}, TRUSTED).after == POSITION


def test_snippet_is_a_short_window_around_the_first_hit() -> None:
    """The snippet shows the first searched word with context, cut at word edges, marked with ellipses."""
    text = ("lorem ipsum dolor " * 40) + "the INVOICE number 4711 is due\n\nnow " + ("sit amet " * 40)
    snippet = snippet_of(text, ("invoice", "4711"))
    assert "INVOICE number 4711 is due now" in snippet
    assert snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) <= 162
    inner = snippet.strip("…")
    assert inner.split(" ")[0] in {"lorem", "ipsum", "dolor", "the"}
    assert inner.split(" ")[-1] in {"sit", "amet"}


@pytest.mark.parametrize(
    ("text", "words", "expected"),
    [
        ("Short receipt text", ("receipt",), "Short receipt text"),
        ("Ihr Büro  meldet\tsich", ("buro",), "Ihr Büro meldet sich"),
        ("", ("invoice",), ""),
    ],
)
def test_short_texts_come_back_whole(text: str, words: tuple[str, ...], expected: str) -> None:
    """A text shorter than the window is the whole snippet, whitespace collapsed."""
    assert snippet_of(text, words) == expected


def test_snippet_matches_word_starts_without_case_or_accents() -> None:
    """'buro' finds 'Büro' as the index does; a stem finds the words it starts ('pay': 'payment'), never the
    inside of a word ('prepay')."""
    text = "prepay " * 30 + "the Payment slip " + "filler " * 30 + "BÜRO address"
    assert "Payment slip" in snippet_of(text, ("pay",))
    assert "BÜRO address" in snippet_of(text, ("buro",))


def test_snippet_without_a_hit_shows_the_beginning() -> None:
    """When Python finds no whole-word hit (the server's tokenizer differs at the edges) the start is shown."""
    text = "first words of the text " + "more " * 100
    assert snippet_of(text, ("absent",)).startswith("first words of the text")


@pytest.mark.parametrize(("text", "q", "found"), [
    ("Receipt from the Büro café", "buro", True),
    ("Receipt from the BÜRO", "büro receipt", True),
    ("the warranties are listed", "warranty", True),
    ("one warranty is listed", "warranties", True),
    ("the beans are here", "bean", True),
    ("a bean is here", "beans", True),
    ("we invoiced it", "invoice", True),
    ("reinvoiced items", "invoice", False),
    ("invoice, then receipt", "invoice missing", False),
])
def test_contains_words_needs_every_word_by_its_stem_with_case_and_accents_folded(
        text: str, q: str, found: bool) -> None:
    """The walk's check of a text the server's REGEXP could not confirm: a word starting with each searched
    word's stem (plurals and simple inflections find each other), folded as the collation."""
    search = ListQuery.from_params({"q": q}, TRUSTED).search
    assert search is not None and contains_words(text, search.stems) is found


@pytest.mark.parametrize(("q", "boolean"), [
    ("bean", "+bean*"), ("beans", "+bean*"), ("Invoices paid", "+invoic* +paid*"),
    ("studies", "+(studi* study*)"), ("bus", "+bus*"),
])
def test_search_words_become_required_stem_prefixes(q: str, boolean: str) -> None:
    """Each searched word is required as a prefix of its English stem in the full-text query, so "bean" and
    "beans" ask the same; a stem shorter than the index's words is the word itself."""
    search = ListQuery.from_params({"q": q}, TRUSTED).search
    assert search is not None and search.boolean_query == boolean
