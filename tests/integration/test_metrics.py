"""`GET /metrics` of a real `python main.py`, parsed with prometheus-client's own parser."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.middleware_server import MiddlewareServer

LIST_CHANNELS = {"operation": "list", "entity_type": "notification.channels"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    env = {"OBSERVER_BACKEND_URL": "", "OBSERVER_BACKEND_TOKEN": ""}  # the embedded backend
    with (
        MiddlewareServer(tmp_path_factory.mktemp("metrics"), env=env) as server,
        httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client,
    ):
        yield client


def families(api: httpx.Client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """`{family name: {sorted labels + sample suffix: value}}` from one scrape."""
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    parsed: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        samples = parsed.setdefault(family.name, {})
        for sample in family.samples:
            labels = (("__name__", sample.name), *sorted(sample.labels.items()))
            samples[labels] = sample.value
    return parsed


def value(parsed, family: str, sample: str, **labels: str) -> float:
    return parsed[family][(("__name__", sample), *sorted(labels.items()))]


def test_requests_are_counted_by_route_template(api: httpx.Client) -> None:
    for _ in range(3):
        assert api.get("/health/live").status_code == 200
    assert api.get("/audit/core/configurations/abc-1").status_code == 200
    assert api.get("/audit/core/configurations/abc-2").status_code == 200
    assert api.get("/no/such/path/123").status_code == 404

    parsed = families(api)
    requests = "observer_http_requests"
    total = "observer_http_requests_total"
    assert value(parsed, requests, total, route="/health/live", method="GET", status="200") == 3
    entity_history = "/audit/{app}/{resource}/{entity_id}"
    assert value(parsed, requests, total, route=entity_history, method="GET", status="200") == 2
    assert value(parsed, requests, total, route="unmatched", method="GET", status="404") == 1
    assert not any("abc-1" in str(labels) for labels in parsed[requests])

    latency = "observer_http_request_duration_seconds"
    count = value(parsed, latency, f"{latency}_count", route="/health/live", method="GET")
    assert count == 3


def test_both_read_routes_count_under_the_read_template(api: httpx.Client) -> None:
    # A valid id is served by the lean read route (crud/read_route.py), a bad one by FastAPI's.
    assert api.get("/api/notification/channels/no-such-id/").status_code == 404
    assert api.get("/api/notification/channels/bad!id/").status_code == 422

    parsed = families(api)
    requests, total = "observer_http_requests", "observer_http_requests_total"
    read = "/api/{app}/{resource}/{entity_id}/"
    assert value(parsed, requests, total, route=read, method="GET", status="404") == 1
    assert value(parsed, requests, total, route=read, method="GET", status="422") == 1


def test_backend_calls_breaker_pool_and_pipeline_are_exported(api: httpx.Client) -> None:
    assert api.post("/crud", json=LIST_CHANNELS).status_code == 200
    parsed = families(api)

    # The same counts as the client's own, which /django/health reports before its own call.
    calls = api.get("/django/health").json()["calls"]
    successes = value(
        parsed, "observer_backend_calls", "observer_backend_calls_total", outcome="success"
    )
    assert successes == calls["success"] > 0
    duration = "observer_backend_call_duration_seconds"
    assert value(parsed, duration, f"{duration}_count", outcome="success") == successes

    breaker = "observer_breaker_state"
    states = {state: value(parsed, breaker, breaker, breaker="django", state=state)
              for state in ("closed", "open", "half_open")}  # fmt: skip
    assert states == {"closed": 1.0, "open": 0.0, "half_open": 0.0}
    transitions = "observer_breaker_transitions"
    assert (
        value(parsed, transitions, f"{transitions}_total", breaker="django", to_state="open") == 0
    )
    assert value(parsed, "observer_backend_retries", "observer_backend_retries_total") == 0

    pool = "observer_db_pool_connections"
    assert value(parsed, pool, pool, state="in_use") == 0
    assert value(parsed, "observer_db_pool_waiting", "observer_db_pool_waiting") == 0

    points = "observer_telemetry_points"
    for stage in ("received", "accepted", "rejected", "duplicates", "processed", "dropped"):
        assert value(parsed, points, f"{points}_total", stage=stage) == 0
    depth = "observer_telemetry_queue_depth"
    assert value(parsed, depth, depth) == 0

    lookups = "observer_cache_lookups"
    results = {result: value(parsed, lookups, f"{lookups}_total", result=result)
               for result in ("hit", "miss", "stale")}  # fmt: skip
    assert results == {"hit": 0, "miss": 1, "stale": 0}  # the one list above


def test_pipeline_counters_follow_ingested_points(api: httpx.Client) -> None:
    points = "observer_telemetry_points"
    received = value(families(api), points, f"{points}_total", stage="received")
    point = {"name": "cpu", "value": 0.5, "timestamp": time.time() - 60}

    response = api.post("/telemetry", json=point)

    assert response.status_code == 202
    after = value(families(api), points, f"{points}_total", stage="received")
    assert after - received == 1
