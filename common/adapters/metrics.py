"""Pipeline metrics kept in Redis, so every function process adds to the same counts the gateway serves.

A function runs as several processes (gunicorn workers, replicas, containers), each short of a scrape
target of its own. Redis is the one store they all reach, and one HINCRBYFLOAT per event costs what a
status-cache write costs. The gateway, which Prometheus already scrapes, reads the hash at scrape time and
writes it out as counters and histograms (`families`). Redis trouble loses a count, never a request.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from redis.exceptions import RedisError

from common.adapters.cache import redis_client, warn_unavailable
from common.config import Settings

KEY = "ocr:metrics"


@dataclass(frozen=True)
class Family:
    """One metric the functions keep: its name (without _total), help, label names, and buckets if a histogram."""

    name: str
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()


# Pages take from a tenth of a second (a text layer) to a minute (a dense scan on a busy core).
PAGE_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)

JOBS_FINISHED = Family("ocr_jobs_finished", "Jobs that reached a final status, by status and error code",
                       ("status", "error_code"))
PAGES = Family("ocr_pages", "Pages read and stored, by how they were read (ocr, text layer, ...)", ("method",))
PAGE_SECONDS = Family("ocr_page_seconds", "Time to read one page", ("method",), PAGE_SECONDS_BUCKETS)

# Status reads and rate-limit refusals are counted by the gateway from the answers it passes on (X-Cache, 429):
# a status read served on the event loop must not wait on a Redis write.
FAMILIES = {f.name: f for f in (JOBS_FINISHED, PAGES, PAGE_SECONDS)}


def _field(family: Family, labels: Mapping[str, str], part: str = "") -> str:
    values = [str(labels.get(name, "")) for name in family.labels]
    return json.dumps([family.name, values, part], separators=(",", ":"))


def count(settings: Settings, family: Family, amount: float = 1.0, **labels: str) -> None:
    """Add to a counter; a Redis failure is logged (rate-limited) and the count is lost."""
    try:
        redis_client(settings).hincrbyfloat(KEY, _field(family, labels), amount)
    except RedisError as e:
        warn_unavailable("metrics", e)


def observe(settings: Settings, family: Family, value: float, **labels: str) -> None:
    """Add one observation to a histogram: its bucket (the smallest bound it fits), the sum and the count."""
    bound = next((b for b in family.buckets if value <= b), math.inf)
    try:
        pipe = redis_client(settings).pipeline(transaction=False)
        pipe.hincrbyfloat(KEY, _field(family, labels, f"le:{bound}"), 1)
        pipe.hincrbyfloat(KEY, _field(family, labels, "sum"), value)
        pipe.execute()
    except RedisError as e:
        warn_unavailable("metrics", e)


def _parsed(raw: Mapping[bytes | str, bytes | str]) -> Iterator[tuple[Family, tuple[str, ...], str, float]]:
    for key, value in raw.items():
        try:
            name, values, part = json.loads(key)
            family = FAMILIES[name]
            amount = float(value)
        except (ValueError, KeyError, TypeError):
            continue  # a field of another version of this module: not ours to show
        if isinstance(values, list) and len(values) == len(family.labels):
            yield family, tuple(str(v) for v in values), str(part), amount


def families(raw: Mapping[bytes | str, bytes | str]) -> list[Metric]:
    """The hash's fields as Prometheus metric families, every declared family present even when empty.

    Buckets are stored one per bound (not cumulative) so an observation is one increment; Prometheus's
    cumulative `le` buckets are summed here.
    """
    counters: dict[str, dict[tuple[str, ...], float]] = {f.name: {} for f in FAMILIES.values() if not f.buckets}
    hists: dict[str, dict[tuple[str, ...], dict[str, float]]] = {f.name: {} for f in FAMILIES.values() if f.buckets}
    for family, values, part, amount in _parsed(raw):
        if family.buckets:
            hists[family.name].setdefault(values, {})[part] = amount
        elif part == "":
            counters[family.name][values] = amount
    out: list[Metric] = []
    for name, series in counters.items():
        family = FAMILIES[name]
        metric = CounterMetricFamily(name, family.help, labels=list(family.labels))
        for values, amount in sorted(series.items()):
            metric.add_metric(list(values), amount)
        out.append(metric)
    for name, series_by in hists.items():
        family = FAMILIES[name]
        hist = HistogramMetricFamily(name, family.help, labels=list(family.labels))
        for values, parts in sorted(series_by.items()):
            running = 0.0
            buckets: list[tuple[str, float]] = []
            for bound in (*family.buckets, math.inf):
                running += parts.get(f"le:{bound}", 0.0)
                buckets.append(("+Inf" if bound == math.inf else repr(bound), running))
            hist.add_metric(list(values), buckets, parts.get("sum", 0.0))
        out.append(hist)
    return out

