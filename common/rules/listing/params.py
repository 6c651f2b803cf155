"""The listing's query parameters: parsed and validated into a ListQuery, each problem a 400 naming its parameter."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any
from datetime import date, datetime, time, timedelta, timezone

from common.errors import BadRequest, Forbidden, SearchTooDeep, unknown_parameters
from common.models import JobStatus, Principal
from common.rules.apikeys import KEY_ID
from common.rules.listing.cursor import Position, decode_cursor

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
# Only a sanity bound (past the table's size a page is empty anyway); deep paging belongs to cursors.
MAX_OFFSET = 1_000_000_000
# With `q`, the deepest offset + limit of an offset page: past it a word most texts hold has no cheap way (the
# newest-first walk grows with the offset, the full-text index with the word's hits). Cursors have no bound.
MAX_SEARCH_DEPTH = 1_100
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

_INTEGER = re.compile(r"-?[0-9]{1,19}")
# RFC 6838 type and subtype names; a family has "*" as subtype.
_MEDIA_TYPE = re.compile(r"([a-z0-9][a-z0-9!#$&^_.+-]{0,126})/([a-z0-9][a-z0-9!#$&^_.+-]{0,126}|\*)")
_WORD = re.compile(r"\w+")


@lru_cache(maxsize=1)
def _english() -> Any:
    import snowballstemmer  # loaded on the first search only

    return snowballstemmer.stemmer("english")


def stems_of(word: str) -> tuple[str, ...]:
    """The starts a searched word matches: its English stem ("beans" -> "bean", "invoiced" -> "invoic"), so its
    plural and simple inflections find each other; a stem ending in the "i" of a "y" ("studies" -> "studi") also
    as "study". Never shorter than the index's shortest word: then the word itself."""
    stem = _english().stemWord(word)
    if len(stem) < FT_MIN_WORD or not stem.isascii():
        stem = word
    if stem.endswith("i") and len(stem) > FT_MIN_WORD:
        return stem, stem[:-1] + "y"
    return (stem,)


@dataclass(frozen=True)
class Search:
    """The words of `q` the full-text index can find, and those it cannot; each word matches the words of a
    text that start with one of its stems (`stems_of`)."""

    words: tuple[str, ...]
    ignored: tuple[str, ...]

    @property
    def stems(self) -> tuple[tuple[str, ...], ...]:
        return tuple(stems_of(word) for word in self.words)

    @property
    def boolean_query(self) -> str:
        # Every word required, as a prefix of its stem(s); the stems hold only \w characters, so no operator
        # can slip in.
        return " ".join("+(" + " ".join(f"{stem}*" for stem in stems) + ")" if len(stems) > 1 else f"+{stems[0]}*"
                        for stems in self.stems)


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
            if query.search is not None and query.offset + query.limit > MAX_SEARCH_DEPTH:
                raise SearchTooDeep(
                    f"with q, offset + limit may be at most {MAX_SEARCH_DEPTH}, got {query.offset + query.limit}; "
                    f"page deeper with next_cursor (each answer has it), which costs the same at any depth"
                )
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
