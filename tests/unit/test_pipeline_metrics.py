"""The pipeline's metrics as kept in Redis are written out as Prometheus counters and cumulative histograms."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from common.adapters import metrics


class Fixed(Collector):
    def __init__(self, raw: dict[bytes | str, bytes | str]) -> None:
        self.raw = raw

    def collect(self):  # type: ignore[no-untyped-def]
        return metrics.families(self.raw)


def served(raw: dict[bytes | str, bytes | str]) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    registry = CollectorRegistry()
    registry.register(Fixed(raw))
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    """Observations kept one per bound come out as Prometheus's cumulative le buckets, with _sum and _count."""
    page = metrics.PAGE_SECONDS
    raw: dict[bytes | str, bytes | str] = {
        metrics._field(page, {"method": "ocr"}, "le:0.5").encode(): b"2",
        metrics._field(page, {"method": "ocr"}, "le:4.0").encode(): b"1",
        metrics._field(page, {"method": "ocr"}, "le:inf").encode(): b"1",
        metrics._field(page, {"method": "ocr"}, "sum").encode(): b"203.5",
    }
    out = served(raw)
    buckets = out["ocr_page_seconds_bucket"]
    assert buckets[(("le", "0.25"), ("method", "ocr"))] == 0
    assert buckets[(("le", "0.5"), ("method", "ocr"))] == 2
    assert buckets[(("le", "2.0"), ("method", "ocr"))] == 2
    assert buckets[(("le", "4.0"), ("method", "ocr"))] == 3
    assert buckets[(("le", "+Inf"), ("method", "ocr"))] == 4
    assert out["ocr_page_seconds_count"][(("method", "ocr"),)] == 4
    assert out["ocr_page_seconds_sum"][(("method", "ocr"),)] == 203.5


def test_counters_by_label_and_foreign_fields_ignored() -> None:
    """Counters keep their labels; a field this version does not know (another name, other labels) is skipped."""
    raw: dict[bytes | str, bytes | str] = {
        metrics._field(metrics.JOBS_FINISHED, {"status": "failed", "error_code": "ocr_timeout"}): "3",
        metrics._field(metrics.JOBS_FINISHED, {"status": "completed"}): "7",
        '["ocr_gone",["x"],""]': "1",
        '["ocr_pages",["a","b"],""]': "1",
        "not json": "1",
    }
    out = served(raw)
    assert out["ocr_jobs_finished_total"] == {
        (("error_code", "ocr_timeout"), ("status", "failed")): 3.0,
        (("error_code", ""), ("status", "completed")): 7.0,
    }
    assert "ocr_pages_total" not in out

