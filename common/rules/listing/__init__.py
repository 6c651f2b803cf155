"""The document listing: validated query parameters in, one page of documents with job status out.

Contract of `GET /function/list` (docs/openapi.yaml describes the same):

Parameters (any other name is refused with 400 naming it, so a typo such as `stauts=failed` never
silently lists everything; a parameter given twice is refused too; an empty value counts as absent):
- `limit`: page size, 1..100, default 10.
- `offset`: documents to skip (offset mode), 0..1,000,000,000, default 0. Cost grows with the offset. With
  `q`, offset + limit may be at most MAX_SEARCH_DEPTH (1,100), else 400 `search_too_deep` naming the bound
  and `next_cursor`: past it a word most texts hold has no cheap way (see `recent`); cursor pages have no bound.
- `cursor`: the `next_cursor` of the previous answer (cursor mode). Send the same filters and sort
  with it (limit may change); a cursor used with other filters or sort is refused with 400.
  Not combinable with a non-zero offset.
- `filename`: the start of the file name, case-insensitive; `%`, `_` and `/` match themselves. Matching
  follows the column collation (utf8mb4_unicode_ci), so it is accent-insensitive too ("buro" finds "Büro").
  A prefix, not any substring: a range of an index, where a substring read the whole table.
- `content_type`: an exact media type (`application/pdf`) or a family (`image/*`).
- `status`: pending | processing | completed | failed (the document's job).
- `date_from`, `date_to`: ISO 8601, on the document's `created_at`. A date is a UTC calendar day; a
  date-time needs an offset (`Z`, `+02:00`; send `+` as `%2B`). `date_from` is inclusive. `date_to`
  as a date includes that whole day; as a date-time it is exclusive, so consecutive windows
  `[a, b)`, `[b, c)` never share a document. An empty window (date_from not before date_to) is a 400.
- `sort`: `created_at_desc` (default) or `created_at_asc`; ties on created_at are broken by document id
  in the same direction, so the order is total and stable.
- `owner`: a key id; admin keys only (a user key always lists its own documents, and may name only
  itself here). Without it an admin key lists every owner's documents.
- `q`: full-text search in the recognised text. Every searchable word must occur (words are letters,
  digits and `_`; operators and quotes are plain separators), as a word of the text starting with its
  English stem (`params.stems_of`: "bean" and "beans" find each other, "invoice" finds "invoiced"). Words the InnoDB full-text index does
  not hold (shorter than 3 characters, longer than 84, or on its default stop-word list such as "the")
  cannot be searched: they are dropped and echoed in `ignored_terms`; a `q` with no searchable word is
  a 400. `q` filters only: the order stays `sort`, which keeps cursors exact. Each item then carries
  a `snippet`: about 160 characters around the first occurrence of a searched word. A word common in
  the newest documents is found by walking them in list order (`recent`; the window grows with the offset
  page's depth), a rare one by the index.

Answer: `{"items", "total", "total_exact", "limit", "offset", "next_cursor"}` (+ `ignored_terms` with `q`).
- `next_cursor` is in every answer, offset mode included (so a client can switch to cursors), and is
  null when no item follows. The next page is read by keyset, `(created_at, id)` after the last item,
  which costs the same at any depth, and never repeats or skips an item when rows are added meanwhile.
- `total` (offset mode only) is a COUNT over the filter that stops past TOTAL_CAP matches: then `total`
  is the cap and `total_exact` false (at least that many). With a common `q` it is an estimate
  (`total_exact` false): the walk's share of matches times the documents the other filters select
  (counted up to page.BASE_COUNT_CAP, past it the server's estimate).
  Cursor mode skips it: `total`, `total_exact` and `offset` are null there.
- The cursor is opaque base64url JSON with a checksum: it catches edits and corruption, but is not a
  secret token (it only positions a scan within filters the caller may use anyway).

Where each part lives: `params` (parsing and validation), `cursor` (the cursor codec), `query` (the
SQL of a page and its count; a deep offset page of a common status walks a covering index for document
keys only, a rare status reads its own jobs in list order (ix_jobs_status_listed), a file name prefix
the range of its index), `plan`
(the join-order heuristic for status filters), `recent` (a common word's search by walking the newest
documents), `snippets`, and `page` (running the statements, on the read replica when one is set, and
shaping the answer).
"""

from __future__ import annotations

from common.rules.listing.cursor import Position, decode_cursor, encode_cursor
from common.rules.listing.page import list_documents
from common.rules.listing.params import DEFAULT_LIMIT, MAX_LIMIT, ListQuery, Search
from common.rules.listing.query import count_statement, page_statement
from common.rules.listing.snippets import snippet_of

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "ListQuery",
    "Position",
    "Search",
    "count_statement",
    "decode_cursor",
    "encode_cursor",
    "list_documents",
    "page_statement",
    "snippet_of",
]
