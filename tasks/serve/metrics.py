"""``GET /metrics``: the server's counters in Prometheus' text format (prometheus-client), one registry per app.

    serve_requests_total{task, status}       POST /predict answers; task "-" when the request named no served
                                             task (refused before it was read, unreadable, unknown task)
    serve_refused_total{reason}              503s decided from the headers alone (draining, not_running,
                                             queue_full): counted by ``admission.Front`` as plain integers and
                                             read here, so a refusal costs no metrics call
    serve_request_duration_seconds{task}     time from a request's arrival to its answer (every status but the
                                             refusals above)
    serve_batch_requests                     requests in one engine call
    serve_forward_rows                       encoder rows in one forward pass (the engine's ``on_forward``)
    serve_queue_depth                        requests waiting for a batch that somebody still waits for
    serve_in_flight                          requests admitted and not yet answered
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric

from .admission import Admission

NO_TASK = "-"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class _Counts:
    """The request and refusal counters, read from plain integers at scrape time."""

    def __init__(self, statuses: Counter, admission: Admission) -> None:
        self.statuses, self.admission = statuses, admission

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("serve_requests", "POST /predict answers by task and status",
                                       labels=["task", "status"])
        counts = Counter(self.statuses)
        counts[(NO_TASK, "503")] += sum(self.admission.refused.values())
        for (task, status), count in sorted(counts.items()):
            requests.add_metric([task, status], count)
        yield requests
        refused = CounterMetricFamily("serve_refused", "requests refused (503) from their headers alone, by reason",
                                      labels=["reason"])
        for reason, count in self.admission.refused.items():
            refused.add_metric([reason], count)
        yield refused


class Metrics:
    def __init__(self, admission: Admission, queued: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.statuses: Counter = Counter()
        self.latency = Histogram("serve_request_duration_seconds", "time from a request's arrival to its answer",
                                 ["task"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("serve_batch_requests", "requests in one engine call", buckets=SIZE_BUCKETS,
                                    registry=self.registry)
        self.forward_rows = Histogram("serve_forward_rows", "encoder rows in one forward pass", buckets=SIZE_BUCKETS,
                                      registry=self.registry)
        Gauge("serve_queue_depth", "requests waiting for a batch", registry=self.registry).set_function(queued)
        Gauge("serve_in_flight", "requests admitted and not yet answered",
              registry=self.registry).set_function(lambda: admission.inflight)
        self.registry.register(_Counts(self.statuses, admission))

    def answered(self, task: str | None, status: int, seconds: float) -> None:
        """One POST /predict answer; ``task`` None when the request named no served task."""
        label = task or NO_TASK
        self.statuses[(label, str(status))] += 1
        self.latency.labels(label).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """(the text format, its content type)."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
