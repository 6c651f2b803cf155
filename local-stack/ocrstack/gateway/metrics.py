"""The gateway's /metrics: OpenFaaS's gateway metrics, the queue's depth, and the pipeline's counts kept in Redis.

OpenFaaS's names and labels are kept (gateway_function_invocation_total, gateway_functions_seconds as a
histogram, gateway_service_count per function), so a dashboard made for OpenFaaS reads this gateway too.
What the gateway sees in the answers it passes on is counted here: status reads by X-Cache, rate-limit
refusals (429). What only the functions know (jobs finished, pages read) they keep in Redis
(common/adapters/metrics.py), read here at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from common.adapters import metrics as pipeline_metrics

# Prometheus's default buckets, which OpenFaaS's gateway uses, and longer ones: an OCR call runs for
# tens of seconds, and with 10 s as the last bound every such call would fall in +Inf.
FUNCTION_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

# nginx's code for a request whose client closed the connection before the answer: not the function's 502.
CLIENT_CLOSED = 499


class Snapshot(Collector):
    """Values read before a scrape (the asyncio side reads Redis; prometheus_client's collectors are sync)."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterable[Metric]:
        return list(self.families)


def queue_families(stats: Mapping[str, Any] | None) -> list[Metric]:
    """The queue's depth per lane and state, and its dead letters, from AsyncQueue.stats()."""
    depth = GaugeMetricFamily("gateway_queue_depth", "Queued calls per lane: queued (not yet taken), pending "
                              "(taken, running) and delayed (waiting for a retry)", labels=["lane", "state"])
    dead = GaugeMetricFamily("gateway_queue_dead_letters", "Calls that used up their attempts, kept for replay")
    open_bytes = GaugeMetricFamily("gateway_queue_open_bytes", "Bytes of queued calls without a verified caller")
    up = GaugeMetricFamily("gateway_queue_up", "1 when the queue's Redis answered this scrape")
    if stats is None:
        up.add_metric([], 0.0)
        return [up]
    for lane, counts in sorted(stats["lanes"].items()):
        for state in ("queued", "pending", "delayed"):
            depth.add_metric([lane, state], float(counts[state]))
    dead.add_metric([], float(stats["dead"]))
    open_bytes.add_metric([], float(stats["open_bytes"]))
    up.add_metric([], 1.0)
    return [depth, dead, open_bytes, up]


class Metrics:
    """What the gateway counts, in a registry of its own: a second gateway in one process shares nothing."""

    def __init__(self, replicas: Callable[[], Mapping[str, int]]) -> None:
        # No `_created` series: the OpenFaaS gateway shows none. A library-wide switch, harmless here: the
        # gateway's process has no other metrics.
        disable_created_metrics()
        self.registry = CollectorRegistry()
        # Label order as the text has always shown them: code, then function_name.
        self.invocations = Counter("gateway_function_invocation_total", "Function invocations",
                                   ["code", "function_name"], registry=self.registry)
        self.seconds = Histogram("gateway_functions_seconds", "Function time taken", ["code", "function_name"],
                                 buckets=FUNCTION_SECONDS_BUCKETS, registry=self.registry)
        self.status_reads = Counter("ocr_status_reads_total", "Status reads by what the status cache did "
                                    "(hit, miss, off), from the status function's X-Cache", ["cache"],
                                    registry=self.registry)
        self.rate_limited = Counter("ocr_rate_limited_total", "Calls a function refused over its rate limit (429)",
                                    ["function_name"], registry=self.registry)
        self._replicas = replicas
        self.snapshot = Snapshot()
        self.registry.register(self.snapshot)

    def observe(self, function: str, code: int, seconds: float, headers: Mapping[str, str] | None = None) -> None:
        self.invocations.labels(code=str(code), function_name=function).inc()
        self.seconds.labels(code=str(code), function_name=function).observe(seconds)
        if code == 429:
            self.rate_limited.labels(function_name=function).inc()
        cache = next((v for k, v in (headers or {}).items() if k.lower() == "x-cache"), None)
        if cache in ("hit", "miss", "off"):
            self.status_reads.labels(cache=cache).inc()

    def render(self, queue_stats: Mapping[str, Any] | None, pipeline: Mapping[bytes | str, bytes | str]) -> bytes:
        """The text for one scrape, with the values read for it: the queue's stats (None when Redis did not
        answer) and the pipeline's hash."""
        services = GaugeMetricFamily("gateway_service_count", "Current count of replicas for function",
                                     labels=["function_name"])
        for name, count in sorted(self._replicas().items()):
            services.add_metric([name], float(count))
        self.snapshot.families = [services, *queue_families(queue_stats), *pipeline_metrics.families(pipeline)]
        return generate_latest(self.registry)
