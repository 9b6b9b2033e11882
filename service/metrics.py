"""Self-observability: `GET /metrics` in the Prometheus text format.

Requests and backend calls are counted as they happen; everything that is already
counted elsewhere (breaker, retries, database pool, read cache, telemetry pipeline) is
read from `app.state` at scrape time, so there is one source of truth for each number.
Routes are labelled by their template (`/crud/{entity_type}`), never the raw path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.types import Scope

from django_integration.circuit_breaker import BreakerState

logger = logging.getLogger(__name__)

UNMATCHED_ROUTE = "unmatched"  # 404s: one label value, whatever paths scanners try
PIPELINE_COUNTERS = ("received", "accepted", "rejected", "duplicates", "processed", "dropped")
CACHE_RESULTS = ("hit", "miss", "stale")

router = APIRouter(tags=["health"])


class ServiceMetrics:
    """One registry per app, so that several apps in one process keep their own numbers."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "observer_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "observer_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["route", "method"],
            registry=self.registry,
        )
        self.backend_calls = Counter(
            "observer_backend_calls",
            "Attempts to call the Django backend, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.backend_call_seconds = Histogram(
            "observer_backend_call_duration_seconds",
            "Time of one attempt to call the Django backend, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        # Bounded: routes are templates (404s share one label) and statuses are few.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._backend_children: dict[str, tuple[Any, Any]] = {}

    def watch(self, state: Any) -> None:
        """Export the numbers kept on `app.state` (read at each scrape)."""
        self.registry.register(_StateCollector(state))

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request (service/edge.py calls this as each one ends)."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            # Looked up once per route, method and status: `labels()` takes a lock and
            # builds a key, which is measurable on the cache-miss path.
            children = (
                self.requests.labels(route, method, str(status)),
                self.request_seconds.labels(route, method),
            )
            self._request_children[key] = children
        count, duration = children
        count.inc()
        duration.observe(seconds)

    def observe_backend_call(self, outcome: str, seconds: float) -> None:
        """Count one attempt (django_integration/api_client.py calls this after each one)."""
        children = self._backend_children.get(outcome)
        if children is None:  # outcomes are a handful of words: looked up once each, as above
            children = (
                self.backend_calls.labels(outcome),
                self.backend_call_seconds.labels(outcome),
            )
            self._backend_children[outcome] = children
        count, duration = children
        count.inc()
        duration.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


@router.get("/metrics", summary="Prometheus metrics of this service")
async def metrics(request: Request) -> Response:
    body = request.app.state.metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def route_template(scope: Scope) -> str:
    # The router writes the matched route into the scope we share with it.
    route = scope.get("route")
    return getattr(route, "path", None) or UNMATCHED_ROUTE


class _StateCollector(Collector):
    def __init__(self, state: Any) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        client = getattr(self._state, "backend_client", None)
        if client is not None:
            yield from _breaker_metrics(client)
        database = getattr(self._state, "database", None)
        if database is not None:
            yield from _pool_metrics(database.pool_figures())
        cache = getattr(self._state, "cache", None)
        if cache is not None:
            yield _cache_metric(cache.counts)
        pipeline = getattr(self._state, "pipeline", None)
        if pipeline is not None:
            yield from _pipeline_metrics(pipeline.metrics())


def _breaker_metrics(client: Any) -> Iterator[Metric]:
    breaker = client.breaker
    state = GaugeMetricFamily(
        "observer_breaker_state",
        "1 for the state the backend's circuit breaker is in, 0 for the others.",
        labels=["breaker", "state"],
    )
    current = breaker.state
    for candidate in BreakerState:
        state.add_metric([breaker.name, candidate.value], 1.0 if candidate is current else 0.0)
    yield state

    transitions = CounterMetricFamily(
        "observer_breaker_transitions",
        "State changes of the backend's circuit breaker, by the state entered.",
        labels=["breaker", "to_state"],
    )
    for candidate in BreakerState:
        transitions.add_metric([breaker.name, candidate.value], breaker.transitions_to[candidate])
    yield transitions

    yield CounterMetricFamily(
        "observer_breaker_slow_calls", "Backend calls slower than the slow-call limit.",
        value=breaker.slow_calls,
    )  # fmt: skip
    yield CounterMetricFamily(
        "observer_backend_retries", "Backend calls repeated by the retry policy.",
        value=client.retries,
    )  # fmt: skip


def _pool_metrics(figures: dict[str, int]) -> Iterator[Metric]:
    connections = GaugeMetricFamily(
        "observer_db_pool_connections",
        "Connections of the middleware's database pool, by what they are doing.",
        labels=["state"],
    )
    for name in ("in_use", "idle", "overflow"):
        connections.add_metric([name], figures[name])
    yield connections
    yield GaugeMetricFamily(
        "observer_db_pool_waiting", "Callers waiting for a database connection.",
        value=figures["waiting"],
    )  # fmt: skip
    yield GaugeMetricFamily(
        "observer_db_pool_size", "Configured size of the database pool.", value=figures["size"]
    )


def _cache_metric(counts: Any) -> Metric:
    lookups = CounterMetricFamily(
        "observer_cache_lookups",
        "Read-cache lookups by result: hit, miss, or a stale copy while the backend fails.",
        labels=["result"],
    )
    for result in CACHE_RESULTS:
        lookups.add_metric([result], sum(n for key, n in counts.items() if str(key) == result))
    return lookups


def _pipeline_metrics(figures: dict[str, Any]) -> Iterator[Metric]:
    points = CounterMetricFamily(
        "observer_telemetry_points",
        "Telemetry points by pipeline stage.",
        labels=["stage"],
    )
    for stage in PIPELINE_COUNTERS:
        points.add_metric([stage], figures.get(stage, 0))
    yield points
    yield GaugeMetricFamily(
        "observer_telemetry_queue_depth", "Points accepted and waiting to be processed.",
        value=figures.get("queued", 0),
    )  # fmt: skip
    yield GaugeMetricFamily(
        "observer_telemetry_queue_capacity", "Points the queue can hold.",
        value=figures.get("queue_capacity", 0),
    )  # fmt: skip
