"""The document listing: validated query parameters in, one page of documents with job status out.

Contract of `GET /function/list` (docs/openapi.yaml describes the same):

Parameters (any other name is refused with 400 naming it, so a typo such as `stauts=failed` never
silently lists everything; a parameter given twice is refused too; an empty value counts as absent):
- `limit`: page size, 1..100, default 10.
- `offset`: documents to skip (offset mode), 0..1,000,000,000, default 0. Cost grows with the offset.
- `cursor`: the `next_cursor` of the previous answer (cursor mode). Send the same filters and sort
  with it (limit may change); a cursor used with other filters or sort is refused with 400.
  Not combinable with a non-zero offset.
- `filename`: case-insensitive substring of the file name; `%`, `_` and `/` match themselves. Matching
  follows the column collation (utf8mb4_unicode_ci), so it is accent-insensitive too ("buro" finds "Büro").
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
  digits and `_`; operators and quotes are plain separators). Words the InnoDB full-text index does
  not hold (shorter than 3 characters, longer than 84, or on its default stop-word list such as "the")
  cannot be searched: they are dropped and echoed in `ignored_terms`; a `q` with no searchable word is
  a 400. `q` filters only: the order stays `sort`, which keeps cursors exact. Each item then carries
  a `snippet`: about 160 characters around the first occurrence of a searched word.

Answer: `{"items", "total", "limit", "offset", "next_cursor"}` (+ `ignored_terms` with `q`).
- `next_cursor` is in every answer, offset mode included (so a client can switch to cursors), and is
  null when no item follows. The next page is read by keyset, `(created_at, id)` after the last item,
  which costs the same at any depth, and never repeats or skips an item when rows are added meanwhile.
- `total` (offset mode only) is a COUNT over the filter: a scan of every matching row, so its cost grows
  with the table. Cursor mode skips it: `total` and `offset` are null there.
- The cursor is opaque base64url JSON with a checksum: it catches edits and corruption, but is not a
  secret token (it only positions a scan within filters the caller may use anyway).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, text
from sqlalchemy.dialects.mysql import match
from sqlalchemy.orm import Session

from common.adapters.db import Document, Job, session_scope
from common.config import Settings
from common.errors import BadRequest, Forbidden, unknown_parameters
from common.models import JobStatus, Principal
from common.rules.apikeys import KEY_ID
from common.rules.status import iso

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
# Only a sanity bound (past the table's size a page is empty anyway); deep paging belongs to cursors.
MAX_OFFSET = 1_000_000_000
SORTS = ("created_at_desc", "created_at_asc")
PARAMETERS = frozenset(
    {"limit", "offset", "cursor", "filename", "content_type", "status", "date_from", "date_to", "sort", "q", "owner"}
)

# InnoDB full-text defaults, identical on MariaDB 10.11 and MySQL 8 (innodb_ft_min_token_size,
# innodb_ft_max_token_size, INFORMATION_SCHEMA.INNODB_FT_DEFAULT_STOPWORD): words outside them are not
# in the index, and a required (+) word that is not indexed would make every search come back empty.
FT_MIN_WORD = 3
FT_MAX_WORD = 84
FT_STOPWORDS = frozenset(
    "a about an are as at be by com de en for from how i in is it la of on or that the this to was what "
    "when where who will with und www".split()
)
MAX_Q_CHARS = 256
MAX_Q_WORDS = 20
MAX_FILENAME_CHARS = 255
SNIPPET_CHARS = 160
SNIPPET_FOLD_CHARS = 200_000
MAX_CURSOR_CHARS = 512
CURSOR_VERSION = 1

_INTEGER = re.compile(r"-?[0-9]{1,19}")
# RFC 6838 type and subtype names; a family has "*" as subtype.
_MEDIA_TYPE = re.compile(r"([a-z0-9][a-z0-9!#$&^_.+-]{0,126})/([a-z0-9][a-z0-9!#$&^_.+-]{0,126}|\*)")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Position:
    """Where a page ended: the keyset the next page starts after."""

    created_at: datetime  # naive UTC with microseconds, as stored
    document_id: str


@dataclass(frozen=True)
class Search:
    """The words of `q` the full-text index can find, and those it cannot."""

    words: tuple[str, ...]
    ignored: tuple[str, ...]

    @property
    def boolean_query(self) -> str:
        # Every word required; the words hold only \w characters, so no operator can slip in.
        return " ".join(f"+{word}" for word in self.words)


@dataclass(frozen=True)
class ListQuery:
    """A validated listing request: page size and position, order, and filters."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    sort: str = "created_at_desc"
    filename: str | None = None
    content_type: str | None = None  # exact type, or "type/*"
    status: JobStatus | None = None
    created_from: datetime | None = None  # inclusive, naive UTC
    created_before: datetime | None = None  # exclusive, naive UTC
    search: Search | None = None
    owner: str | None = None  # a key id; None lists every owner's documents (admins only)
    after: Position | None = None  # set by a cursor: keyset paging instead of offset

    @property
    def descending(self) -> bool:
        return self.sort == "created_at_desc"

    @property
    def filter_key(self) -> str:
        """A digest of sort and filters: a cursor is only valid for the listing that issued it."""
        canonical = {
            "sort": self.sort,
            "filename": self.filename,
            "content_type": self.content_type,
            "status": self.status.value if self.status else None,
            "from": self.created_from.isoformat() if self.created_from else None,
            "before": self.created_before.isoformat() if self.created_before else None,
            "q": list(self.search.words) if self.search else None,
            "owner": self.owner,
        }
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_params(cls, params: Mapping[str, str], caller: Principal) -> "ListQuery":
        """Parse and validate query parameters; each problem is a BadRequest naming its parameter.

        A user key's listing is always limited to its own documents.
        """
        unknown = sorted(set(params) - PARAMETERS)
        if unknown:
            raise unknown_parameters(unknown, sorted(PARAMETERS))
        values = {name: _single(params, name) for name in sorted(PARAMETERS)}
        created_from = _moment(values["date_from"], "date_from", end_of_day=False)
        created_before = _moment(values["date_to"], "date_to", end_of_day=True)
        if created_from is not None and created_before is not None and created_from >= created_before:
            raise BadRequest(
                f"date_from must be earlier than date_to, got date_from={values['date_from']!r} "
                f"and date_to={values['date_to']!r}"
            )
        query = cls(
            limit=_integer(values["limit"], "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
            offset=_integer(values["offset"], "offset", 0, 0, MAX_OFFSET),
            sort=_choice(values["sort"], "sort", SORTS, "created_at_desc"),
            filename=_filename(values["filename"]),
            content_type=_content_type(values["content_type"]),
            status=_status(values["status"]),
            created_from=created_from,
            created_before=created_before,
            search=_search(values["q"]),
            owner=_owner(values["owner"], caller),
        )
        if values["cursor"] is None:
            return query
        if query.offset:
            raise BadRequest("cursor and offset cannot be combined: a cursor already says where the page starts")
        return replace(query, after=decode_cursor(values["cursor"], query))


def _single(params: Mapping[str, str], name: str) -> str | None:
    """The one value of a parameter; a repeated parameter is ambiguous, so it is refused."""
    getlist = getattr(params, "getlist", None)  # werkzeug's MultiDict keeps every value
    if getlist is not None and len(getlist(name)) > 1:
        raise BadRequest(f"{name} was given more than once; send it once")
    raw = params.get(name)
    return None if raw is None or raw == "" else raw


def _integer(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw):
        raise BadRequest(f"{name} must be an integer between {low} and {high}, got {raw[:40]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def _choice(raw: str | None, name: str, allowed: tuple[str, ...], default: str) -> str:
    if raw is None:
        return default
    if raw not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}, got {raw[:40]!r}")
    return raw


def _status(raw: str | None) -> JobStatus | None:
    if raw is None:
        return None
    return JobStatus(_choice(raw, "status", tuple(s.value for s in JobStatus), ""))


def _owner(raw: str | None, caller: Principal) -> str | None:
    if raw is not None and not KEY_ID.fullmatch(raw):
        raise BadRequest(f"owner must be a key id (12 hex digits), got {raw[:40]!r}")
    if caller.is_admin:
        return raw
    if raw is not None and raw != caller.key_id:
        raise Forbidden("only admin keys may list another key's documents")
    return caller.key_id


def _filename(raw: str | None) -> str | None:
    if raw is not None and len(raw) > MAX_FILENAME_CHARS:
        raise BadRequest(f"filename must be at most {MAX_FILENAME_CHARS} characters, got {len(raw)}")
    return raw


def _content_type(raw: str | None) -> str | None:
    if raw is None:
        return None
    value = raw.strip().lower()  # media types are case-insensitive (RFC 6838)
    if not _MEDIA_TYPE.fullmatch(value):
        raise BadRequest(f"content_type must be a media type such as application/pdf or a family such as image/*, "
                         f"got {raw[:80]!r}")
    return value


def _moment(raw: str | None, name: str, end_of_day: bool) -> datetime | None:
    """A bound as naive UTC: a date is its UTC day (date_to: up to the next midnight), a date-time needs an offset."""
    if raw is None:
        return None
    hint = "; a '+' in the offset must be sent as %2B" if " " in raw.strip() else ""
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        day = None
    try:
        if day is not None:
            return datetime.combine(day + timedelta(days=1) if end_of_day else day, time())
        moment = datetime.fromisoformat(raw)
    except OverflowError:
        return None  # the day after 9999-12-31: no upper bound at all
    except ValueError as e:
        raise BadRequest(f"{name} must be an ISO 8601 date (2026-01-31) or date-time with offset "
                         f"(2026-01-31T12:00:00Z), got {raw[:60]!r}{hint}") from e
    if moment.tzinfo is None:
        raise BadRequest(f"{name} needs a UTC offset (Z or +02:00) when it has a time, got {raw[:60]!r}")
    try:
        return moment.astimezone(timezone.utc).replace(tzinfo=None)
    except OverflowError as e:
        raise BadRequest(f"{name} is out of range, got {raw[:60]!r}") from e


def _search(raw: str | None) -> Search | None:
    if raw is None:
        return None
    if len(raw) > MAX_Q_CHARS:
        raise BadRequest(f"q must be at most {MAX_Q_CHARS} characters, got {len(raw)}")
    words: list[str] = []
    ignored: list[str] = []
    for word in _WORD.findall(raw.lower()):
        indexed = FT_MIN_WORD <= len(word) <= FT_MAX_WORD and word not in FT_STOPWORDS
        bucket = words if indexed else ignored
        if word not in bucket:
            bucket.append(word)
    if not words:
        raise BadRequest(
            f"q has no searchable word: the full-text index holds words of {FT_MIN_WORD} to {FT_MAX_WORD} "
            f"characters except stop words such as 'the', got {raw[:60]!r}"
        )
    if len(words) > MAX_Q_WORDS:
        raise BadRequest(f"q may have at most {MAX_Q_WORDS} words, got {len(words)}")
    return Search(words=tuple(words), ignored=tuple(ignored))


# --- cursors -------------------------------------------------------------------------------------


def _checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def encode_cursor(query: ListQuery, position: Position) -> str:
    """Opaque to clients: base64url of JSON with the keyset, the filter digest and a checksum."""
    body: dict[str, Any] = {
        "v": CURSOR_VERSION,
        "s": query.sort,
        "f": query.filter_key,
        "t": position.created_at.isoformat(timespec="microseconds"),
        "i": position.document_id,
    }
    body["c"] = _checksum(body)
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).rstrip(b"=").decode()


def decode_cursor(raw: str, query: ListQuery) -> Position:
    """The keyset inside a cursor issued for exactly this sort and these filters."""
    invalid = BadRequest("cursor is not a cursor this listing issued (damaged or edited); "
                         "start again without cursor")
    if len(raw) > MAX_CURSOR_CHARS:
        raise invalid
    try:
        body = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as e:
        raise invalid from e
    if not isinstance(body, dict) or set(body) != {"v", "s", "f", "t", "i", "c"}:
        raise invalid
    checksum = body.pop("c")
    if checksum != _checksum(body) or body["v"] != CURSOR_VERSION:
        raise invalid
    if body["s"] != query.sort or body["f"] != query.filter_key:
        raise BadRequest("cursor belongs to a listing with other filters or sort; send the same filter and "
                         "sort parameters as the page it came from, or start again without cursor")
    try:
        created_at = datetime.fromisoformat(body["t"])
    except (TypeError, ValueError) as e:
        raise invalid from e
    if created_at.tzinfo is not None or not isinstance(body["i"], str) or not 0 < len(body["i"]) <= 36:
        raise invalid
    return Position(created_at=created_at, document_id=body["i"])


# --- the query -----------------------------------------------------------------------------------


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
    if _status_is_common(session, query):
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


def _status_is_common(session: Session, query: ListQuery) -> bool:
    """Whether a status filter matches so many jobs that reading documents in list order is cheaper.

    Two plans answer `?status=`: collect that status's jobs by ix_jobs_status and sort them (cost grows
    with the matches M), or walk documents in list order and keep those whose job has the status
    (about wanted * N / M rows for N documents). MariaDB 10.11 picks the first even for a status most
    jobs have (measured: 370 ms against 0.4 ms at 100k documents), so the second is forced when
    M^2 > wanted * N. M is counted only up to that bound, and N is the server's row estimate.
    """
    if query.status is None or query.search is not None:
        return False  # with q the full-text index has to drive
    documents = session.execute(
        select(text("TABLE_ROWS")).select_from(text("information_schema.TABLES"))
        .where(text("TABLE_SCHEMA = DATABASE()"), text("TABLE_NAME = 'documents'"))
    ).scalar_one_or_none() or 0
    wanted = query.offset + query.limit + 1
    bound = math.isqrt(wanted * int(documents)) + 1
    probe = select(Job.id).where(Job.status == query.status).limit(bound).subquery()
    return session.execute(select(func.count()).select_from(probe)).scalar_one() >= bound


def list_documents(settings: Settings, query: ListQuery) -> dict[str, Any]:
    """One page in list order, the cursor of the next one, and the total in offset mode."""
    with session_scope(settings) as session:
        rows = session.execute(page_statement(session, query)).all()
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        total = None if query.after is not None else session.execute(count_statement(query)).scalar_one()
        texts: dict[str, str | None] = {}
        if query.search is not None and rows:
            # Fetched apart from the page: a MEDIUMTEXT carried through the page's sort would force an
            # on-disk temporary table for every hit, not just the ones shown.
            shown = [row.job_id for row in rows]
            texts = dict(session.execute(select(Job.id, Job.text).where(Job.id.in_(shown))).all())
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
            item["snippet"] = snippet_of(texts.get(row.job_id) or "", query.search.words)
        items.append(item)
    next_cursor = encode_cursor(query, Position(rows[-1].created_at, rows[-1].id)) if more else None
    body: dict[str, Any] = {
        "items": items,
        "total": total,
        "limit": query.limit,
        "offset": None if query.after is not None else query.offset,
        "next_cursor": next_cursor,
    }
    if query.search is not None:
        body["ignored_terms"] = list(query.search.ignored)
    return body


# --- snippets ------------------------------------------------------------------------------------


def _folded(text: str) -> tuple[str, list[int]]:
    """Text without case and accents (as utf8mb4_unicode_ci compares), with each folded char's source index."""
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        plain = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)).casefold()
        chars.append(plain)
        origin.extend([index] * len(plain))
    return "".join(chars), origin


def _first_hit(text: str, words: tuple[str, ...]) -> int | None:
    """Index of the first whole-word occurrence of any word, ignoring case and (for non-ASCII text) accents."""
    found = re.search(rf"(?<!\w)(?:{'|'.join(map(re.escape, words))})(?!\w)", text, re.IGNORECASE)
    if found:
        return found.start()
    if text.isascii():
        return None
    # Accent folding walks the text char by char in Python: bounded, as OCR texts can run to megabytes.
    head = text[:SNIPPET_FOLD_CHARS]
    folded, origin = _folded(head)
    pattern = "|".join(re.escape(_folded(word)[0]) for word in words)
    found = re.search(rf"(?<!\w)(?:{pattern})(?!\w)", folded)
    return origin[found.start()] if found else None


def snippet_of(text: str, words: tuple[str, ...], width: int = SNIPPET_CHARS) -> str:
    """About `width` characters around the first occurrence of any word, whitespace collapsed, cut at spaces."""
    text = " ".join(text.split())
    # No hit in Python's view (the server's tokenizer differs at the edges): show the beginning.
    hit = _first_hit(text, words) or 0
    start = max(0, min(hit - width // 3, len(text) - width))
    end = min(len(text), start + width)
    if start > 0 and text[start - 1] != " ":  # do not open on half a word
        space = text.find(" ", start, hit)
        start = space + 1 if space != -1 else start
    if end < len(text) and text[end] != " ":
        space = text.rfind(" ", hit, end)
        end = space if space > hit else end
    return ("…" if start > 0 else "") + text[start:end].strip() + ("…" if end < len(text) else "")
