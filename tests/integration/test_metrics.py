"""/metrics through a real pipeline: jobs by status and code, pages and their seconds, the queue, the cache; the
Grafana dashboard in docs/ asks only for names /metrics serves."""

from __future__ import annotations

import io
import json
import re
import uuid
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.config import Settings
from tests.conftest import REPO_ROOT
from tests.integration.test_pipeline import _job_of_key
from tests.support import Gateway, image_bytes, wait_until

pytestmark = pytest.mark.integration

DASHBOARD = REPO_ROOT / "docs" / "grafana" / "ocr-pipeline.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",), "summary": ("_sum", "_count")}


def scrape(gateway: Gateway) -> tuple[set[str], dict[str, dict[tuple[tuple[str, str], ...], float]]]:
    """The sample names /metrics can serve (by each family's type, samples or not) and the samples it served."""
    reply = gateway.request("GET", "/metrics")
    assert reply.status == 200
    names: set[str] = set()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
        for s in family.samples:
            names.add(s.name)
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return names, samples


def total(samples: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, **labels: str) -> float:
    return sum(v for k, v in samples.get(name, {}).items() if set(labels.items()) <= set(k))


def test_a_completed_and_a_failed_job_show_in_the_pipeline_metrics(gateway: Gateway, s3: Any,
                                                                  settings: Settings) -> None:
    """A completed upload adds a completed job, its page and its seconds; a bad drop a failed job with its code;
    status reads count as cache misses then hits."""
    _, before = scrape(gateway)
    reply = gateway.upload(image_bytes(["METRICS page one"]), "metrics.png")
    assert reply.status == 202, reply.body
    job_id = reply.json()["job_id"]
    assert gateway.wait_final(job_id)["status"] == "completed"
    key = f"{settings.inbox_prefix}{gateway.key_id}/bad-{uuid.uuid4().hex[:8]}.pdf"
    s3.put_object(settings.s3_bucket, key, io.BytesIO(b""), 0)
    assert gateway.wait_final(wait_until(lambda: _job_of_key(settings, key), 60, what="the drop"))["status"] == "failed"
    for _ in range(3):
        assert gateway.status(job_id).status == 200
    _, after = scrape(gateway)

    def grew(name: str, by: float = 1, **labels: str) -> bool:
        return total(after, name, **labels) - total(before, name, **labels) >= by

    assert grew("ocr_jobs_finished_total", status="completed", error_code="")
    assert grew("ocr_jobs_finished_total", status="failed", error_code="empty_file")
    assert grew("ocr_pages_total") and grew("ocr_page_seconds_count")
    assert grew("ocr_page_seconds_bucket", le="+Inf") and total(after, "ocr_page_seconds_sum") > 0
    assert grew("ocr_status_reads_total", cache="hit")
    assert grew("gateway_functions_seconds_count", function_name="upload", code="202")
    assert total(after, "gateway_service_count", function_name="ocr-process") >= 1
    assert ("lane", "default") in {pair for labels in after["gateway_queue_depth"] for pair in labels}
    assert "gateway_queue_dead_letters" in after


def test_the_grafana_dashboard_uses_only_served_names(gateway: Gateway) -> None:
    """Every metric name in the dashboard's queries is one /metrics serves."""
    names, _ = scrape(gateway)
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b((?:gateway|ocr)_[a-z_]+)", e)}
    assert len(exprs) >= 10 and used
    assert used <= names, sorted(used - names)
    for wanted in ("gateway_functions_seconds_bucket", "ocr_jobs_finished_total", "ocr_page_seconds_bucket",
                   "gateway_queue_depth", "gateway_queue_dead_letters", "ocr_status_reads_total",
                   "ocr_rate_limited_total", "gateway_service_count"):
        assert wanted in used, wanted
