"""status's ?include= choices, and how an answer is put together from the cached bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from common.adapters.cache import CachedStatus, _decode_status, _encode_status
from common.errors import BadRequest
from common.rules.status import StatusRead, encode, parse_include


@pytest.mark.parametrize(("value", "chosen"), [
    (None, set()), ("", set()), ("pages", {"pages"}), ("words", {"pages", "words"}),
    ("pages,words", {"pages", "words"}), (" words , pages ", {"pages", "words"}),
])
def test_include_choices(value: str | None, chosen: set[str]) -> None:
    """Words come inside their pages, so asking for words brings the pages."""
    assert parse_include(value) == chosen


def test_unknown_include_names_the_choices() -> None:
    with pytest.raises(BadRequest) as info:
        parse_include("pages,boxes")
    assert info.value.http_status == 400
    assert "boxes" in info.value.message and "pages, words" in info.value.message


@pytest.mark.parametrize("extra", [{}, {"outputs": {"pdf": "http://x/a.pdf?sig=1"}},
                                   {"outputs": {}, "pages": [{"page": 1, "text": "é\n\"q\""}]}])
def test_an_answer_is_the_stored_json_with_the_per_read_fields_spliced_in(extra: dict[str, Any]) -> None:
    """json_bytes() is valid JSON equal to stored + extra, and is `stored` itself when nothing is added."""
    stored = encode({"job_id": "j", "status": "completed", "text": "Büro\nline \"two\" }"})
    read = StatusRead(stored=stored, status="completed", extra=extra, cache="hit")
    assert json.loads(read.json_bytes()) == read.body == {**json.loads(stored), **extra}
    assert (read.json_bytes() is stored) == (not extra)


def test_a_cached_entry_round_trips_through_its_stored_form() -> None:
    """Header line, newline, body: decoding gives back the entry, the body bytes untouched."""
    entry = CachedStatus(body=encode({"text": "a\nb", "status": "completed"}), owner_id="3f9c2a7b1d04",
                         status="completed", outputs={"pdf": "results/j/document.pdf"})
    stored = _encode_status(4, entry)
    assert json.loads(stored.split(b"\n", 1)[0])["v"] == 4
    assert _decode_status(stored) == entry


@pytest.mark.parametrize("raw", [b'{"v":9}', b'{"v":3,"body":{"status":"pending"}}', b"not json\n{}", b'{"v":1}\n'])
def test_markers_and_unreadable_entries_are_misses(raw: bytes) -> None:
    """A version marker, an entry of the older one-object format, or garbage is read as a miss."""
    assert _decode_status(raw) is None
