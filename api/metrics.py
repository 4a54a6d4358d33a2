"""Prometheus metrics of one app: HTTP requests by route template and status, context stage timings,
ingest jobs and documents. A registry per app, so several apps in one process do not collide.

Every label value comes from a closed set (callers choose methods and paths, so those are mapped:
unknown method → ``other``, no route → ``unmatched``, rare statuses → ``4xx``/``5xx``); nothing is
labelled per document, principal or query. ``GET /metrics`` needs the ``metrics`` (or admin) scope.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from core.config import shared_metrics_dir

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_OUTCOMES = ("added", "updated", "unchanged", "deleted", "failed", "invisible", "chunks")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_STATUSES = frozenset({200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503})
_MAX_STAGES = 16  # stage names come from code; the cap only guards against a future dynamic name


def method_label(method: str) -> str:
    """The request method, or ``other`` for anything outside the HTTP methods the API knows."""
    return method if method in _METHODS else "other"


def status_label(status: int) -> str:
    """The status code for the ones the API answers, else its class (``4xx``)."""
    return str(status) if status in _STATUSES else f"{min(max(status // 100, 1), 5)}xx"


class Metrics:
    """The collectors an app exports on ``GET /metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "stitch_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "stitch_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.stages = Histogram(
            "stitch_context_stage_seconds", "Context/search stage timings (timings_ms)", ["stage"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.ingest_jobs = Counter("stitch_ingest_jobs", "Ingest jobs by final status", ["status"], registry=self.registry)
        self.ingest_documents = Counter(
            "stitch_ingest_documents", "Documents (and chunks) by ingest outcome", ["outcome"], registry=self.registry
        )
        self._stage_names: set[str] = set()
        # labels() takes a lock and builds a key on every call: keep the children (label sets are closed).
        self._children: dict[tuple, tuple] = {}
        self.jobs_pending = Gauge("stitch_ingest_jobs_pending", "Ingest jobs queued or running", registry=self.registry,
                                  multiprocess_mode="livesum")
        self._shared_dir = shared_metrics_dir()  # several serve processes (api.workers): sum their files

    def observe_request(self, *, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished HTTP request."""
        labels = (method_label(method), route, status_label(status))  # closed sets: the cache stays small
        children = self._children.get(labels)
        if children is None:
            children = self._children.setdefault(
                labels, (self.requests.labels(*labels), self.latency.labels(*labels[:2])))
        children[0].inc()
        children[1].observe(seconds)

    def observe_stages(self, timings_ms: dict) -> None:
        """Record a request's stage timings."""
        for stage, ms in timings_ms.items():
            child = self._children.get(("stage", stage))
            if child is None:
                if stage not in self._stage_names and len(self._stage_names) >= _MAX_STAGES:
                    child = self.stages.labels("other")
                else:
                    self._stage_names.add(stage)
                    child = self._children.setdefault(("stage", stage), self.stages.labels(stage))
            child.observe(float(ms) / 1000)

    def observe_job(self, status: str, report: dict | None) -> None:
        """Count one finished ingest job and its document outcomes."""
        self.ingest_jobs.labels(status if status in ("succeeded", "failed", "interrupted") else "other").inc()
        for outcome in _OUTCOMES:
            if report and report.get(outcome):
                self.ingest_documents.labels(outcome).inc(report[outcome])

    def render(self) -> bytes:
        """Prometheus text exposition (of every serve process, when there are several)."""
        if not self._shared_dir:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        shared = CollectorRegistry()
        MultiProcessCollector(shared, path=self._shared_dir)
        return generate_latest(shared)
