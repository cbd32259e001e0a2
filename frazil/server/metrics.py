"""``/metrics`` in Prometheus' text format: what happened (counters) and what waits (gauges)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from frazil.server.deps import Reader, State
from frazil.services.queries import queue_depths
from frazil.store.db import Database

router = APIRouter(tags=["metrics"])


class _QueueDepths(Collector):
    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "frazil_tasks",
            "Tasks of datasets still at work, by state",
            labels=["dataset", "status"],
        )
        for d in queue_depths(self.db):
            gauge.add_metric([str(d.dataset_id), d.status], d.count)
        yield gauge


class Metrics:
    """The counters the routes bump, and the registry ``/metrics`` renders."""

    def __init__(self, db: Database) -> None:
        self.registry = CollectorRegistry()
        self._claims = Counter("frazil_claims", "Tasks handed to sites", registry=self.registry)
        self._completions = Counter(
            "frazil_completions", "Attempts that completed", registry=self.registry
        )
        self._failures = Counter(
            "frazil_failures", "Attempts that failed or were lost", registry=self.registry
        )
        self.registry.register(_QueueDepths(db))

    def claimed(self, n: int) -> None:
        """Count tasks handed out."""
        self._claims.inc(n)

    def completed(self) -> None:
        """Count a completed attempt."""
        self._completions.inc()

    def failed(self) -> None:
        """Count a failed or lost attempt."""
        self._failures.inc()


@router.get("/metrics")
def metrics(app: State, _: Reader) -> Response:
    """Prometheus metrics."""
    assert app.metrics is not None
    return Response(generate_latest(app.metrics.registry), media_type=CONTENT_TYPE_LATEST)
