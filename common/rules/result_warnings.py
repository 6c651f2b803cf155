"""A job's warnings: its pages' warnings gathered by code (with the pages each concerns), and its own.

A page stores its warnings in a column of their own (pages.warnings), so a job's are gathered at completion
without reading any page's words; the job keeps the gathered list, and status shows both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from common.models import ResultWarning


def stored(raw: str | None) -> list[dict[str, Any]]:
    """A warnings column read back ([] for none)."""
    if not raw:
        return []
    value = json.loads(raw)
    return value if isinstance(value, list) else []


def gathered(pages: Iterable[tuple[int, str | None]], own: Iterable[ResultWarning] = ()) -> str | None:
    """The job's warnings as stored: one entry per code, naming its pages in order, with the first page's
    message (and how many more pages share it); then the job's own warnings, which concern no page."""
    by_code: dict[str, dict[str, Any]] = {}
    for number, raw in sorted(pages):
        for warning in stored(raw):
            entry = by_code.setdefault(warning["code"], {"code": warning["code"], "pages": [],
                                                         "message": f"page {number}: {warning['message']}"})
            entry["pages"].append(number)
    out = list(by_code.values())
    for entry in out:
        more = len(entry["pages"]) - 1
        if more:
            entry["message"] += f" (and {more} more page{'s' if more > 1 else ''})"
    out += [{**warning.to_dict(), "pages": []} for warning in own]
    return json.dumps(out) if out else None
