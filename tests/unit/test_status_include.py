"""status's ?include= choices."""

from __future__ import annotations

import pytest

from common.errors import BadRequest
from common.rules.status import parse_include


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
