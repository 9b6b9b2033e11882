"""Errors linked across services, assembled traces, the service graph, cascades, co-movement."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy import stats

from telemetry.comovement import CoMovementQuery, co_moving
from tests.telemetry.analysis_app import analysis_service
from tests.telemetry.conftest import metric, wait_processed

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


def _span(service: str, span: str, offset: float, trace: str = "t1", **fields) -> dict:
    return {
        "type": "trace",
        "name": f"{service} call",
        "service": service,
        "trace_id": trace,
        "span_id": span,
        "timestamp": T0 + offset,
        "duration_ms": 12.5,
        **fields,
    }


def _error(service: str, offset: float, **fields) -> dict:
    return {
        "type": "log",
        "name": "request failed",
        "service": service,
        "severity": "error",
        "timestamp": T0 + offset,
        **fields,
    }


@pytest.fixture
def service(tmp_path):
    return lambda **overrides: analysis_service(tmp_path, **overrides)


async def test_error_in_two_services_of_one_trace_is_one_correlation(service):
    points = [
        _span("api", "a1", 0.0),
        _span("db", "d1", 0.5, parent_span_id="a1", attributes={"status": "ERROR"}),
        {**_error("api", 1.0, trace_id="t1"), "message": "upstream db failed"},
        _span("web", "w1", 2.0, trace="t2"),  # a trace without errors is no correlation
    ]
    async with service() as app:
        response = await app.client.post("/telemetry/batch", json=points)
        assert response.json()["accepted"] == 4
        await wait_processed(app.client)
        items = (await app.client.get("/telemetry/correlations")).json()["items"]

    assert len(items) == 1
    correlation = items[0]
    members = [(m["service"], m["type"], m["error"]) for m in correlation["members"]]
    assert {key: correlation[key] for key in ("kind", "id", "services", "error_services")} == {
        "kind": "trace",
        "id": "t1",
        "services": ["api", "db"],
        "error_services": ["db", "api"],
    }
    assert correlation["origin_service"] == "db"
    assert correlation["cross_service"] is True
    assert correlation["error_count"] == 2
    assert correlation["first_seen"] == "2023-11-14T22:13:20Z"
    assert members == [("api", "trace", False), ("db", "trace", True), ("api", "log", True)]


async def test_errors_further_apart_than_the_window_are_not_linked(service):
    points = [
        {**_error("ci", 0.0, correlation_id="c9"), "type": "event", "severity": "critical"},
        {**_error("cd", 120.0, correlation_id="c9"), "type": "event"},
    ]
    async with service(telemetry_correlation_window_seconds=60) as app:
        await app.client.post("/telemetry/batch", json=points)
        await wait_processed(app.client)
        items = (await app.client.get("/telemetry/correlations")).json()["items"]

    assert [(c["kind"], c["id"], c["services"], c["error_services"]) for c in items] == [
        ("correlation", "c9", ["cd", "ci"], ["ci"])
    ]
    assert items[0]["cross_service"] is False


async def test_a_trace_is_assembled_whatever_order_its_spans_arrive_in(service):
    children = [
        _span("auth", "u1", 0.005, parent_span_id="a1", duration_ms=10.0),
        _span("db", "d1", 0.02, parent_span_id="a1", duration_ms=70.0, severity="error"),
        _span("disk", "k1", 0.03, parent_span_id="d1", duration_ms=50.0, severity="error"),
    ]
    root = _span("api", "a1", 0.0, duration_ms=100.0, correlation_id="order-7")
    linked = [
        {**_error("api", 0.2, trace_id="t1"), "message": "500 returned"},
        {**_error("disk", 0.04, span_id="k1"), "message": "EIO"},  # by span id only
        {"type": "event", "name": "refund", "correlation_id": "order-7", "timestamp": T0 + 1},
    ]
    async with service() as app:
        await app.client.post("/telemetry/batch", json=children)
        await wait_processed(app.client)
        await app.client.post("/telemetry/batch", json=[root, *linked])
        await wait_processed(app.client)
        trace = (await app.client.get("/telemetry/traces/t1")).json()
        graph = (await app.client.get("/telemetry/services")).json()
        db_only = (await app.client.get("/telemetry/services", params={"service": "disk"})).json()

    assert {key: trace[key] for key in ("span_count", "duration_ms", "services", "start")} == {
        "span_count": 4,
        "duration_ms": 100.0,
        "services": ["api", "auth", "db", "disk"],
        "start": "2023-11-14T22:13:20Z",
    }
    assert [s["span_id"] for s in trace["critical_path"]] == ["a1", "d1", "k1"]
    assert [s["span_id"] for s in trace["error_spans"]] == ["d1", "k1"]
    assert (trace["root_cause"]["span_id"], trace["root_cause"]["depth"]) == ("k1", 2)
    tree = trace["tree"]
    assert [(node["span_id"], [c["span_id"] for c in node["children"]]) for node in tree] == [
        ("a1", ["u1", "d1"])
    ]
    assert tree[0]["children"][1]["children"][0]["span_id"] == "k1"
    assert [(entry["service"], entry["name"]) for entry in trace["linked"]] == [
        ("disk", "request failed"),
        ("api", "request failed"),
        ("unknown", "refund"),
    ]
    assert [(e["caller"], e["callee"], e["calls"], e["errors"]) for e in graph["edges"]] == [
        ("api", "auth", 1, 0),
        ("api", "db", 1, 1),
        ("db", "disk", 1, 1),
    ]
    assert graph["services"] == ["api", "auth", "db", "disk"]
    assert db_only == {
        "services": ["db", "disk"],
        "edges": [graph["edges"][2]],
    }


async def test_an_unknown_or_evicted_trace_is_a_404_problem(service):
    spans = [_span("api", f"s{i}", i, trace=f"t{i}") for i in range(3)]
    async with service(telemetry_max_traces=2) as app:
        await app.client.post("/telemetry/batch", json=spans)
        await wait_processed(app.client)
        evicted = await app.client.get("/telemetry/traces/t0")
        kept = await app.client.get("/telemetry/traces/t2")

    assert evicted.status_code == 404
    assert evicted.headers["content-type"] == "application/problem+json"
    assert evicted.json()["detail"] == "No trace 't0' is held; it is unknown or was evicted."
    assert kept.json()["span_count"] == 1


async def test_an_error_burst_spreading_to_callers_is_one_cascade(service):
    calls = [
        _span("web", "w", 0.0, trace="t9"),
        _span("api", "a", 0.1, trace="t9", parent_span_id="w"),
        _span("db", "d", 0.2, trace="t9", parent_span_id="a"),
    ]
    errors = [
        _error("db", 10.0),
        _error("db", 11.0),
        _error("api", 11.5),  # between the burst's first error and the one completing it
        _error("db", 12.0),
        _error("mail", 15.0),  # not a caller of anything in the cascade
        _error("api", 20.0),
        _error("web", 30.0),
        _error("web", 200.0),  # long after: no longer part of it
    ]
    async with service() as app:
        await app.client.post("/telemetry/batch", json=calls)
        await wait_processed(app.client)
        await app.client.post("/telemetry/batch", json=errors)
        await wait_processed(app.client)
        cascades = (await app.client.get("/telemetry/correlations")).json()["items"]
        for_mail = await app.client.get("/telemetry/correlations", params={"service": "mail"})
        too_late = await app.client.get(
            "/telemetry/correlations", params={"kind": "cascade", "since": str(T0 + 31)}
        )

    assert cascades == [
        {
            "kind": "cascade",
            "origin_service": "db",
            "affected_services": ["api", "web"],
            "services": ["api", "db", "web"],
            "first_seen": "2023-11-14T22:13:30Z",
            "last_seen": "2023-11-14T22:13:50Z",
            "error_count": 6,
        }
    ]
    assert for_mail.json()["items"] == []
    assert too_late.json()["items"] == []


async def test_metric_series_that_move_together_are_found_with_their_p_value(service):
    rng = random.Random(7)
    level, points = 50.0, []
    for minute in range(40):
        level += rng.uniform(-5, 5)
        points.append(metric("cpu", level, T0 + 60 * minute, service="api"))
        points.append(metric("latency", 3 * level + rng.uniform(-0.1, 0.1), T0 + 60 * minute + 5))
        points.append(metric("queue", rng.uniform(0, 100), T0 + 60 * minute, service="worker"))
    async with service() as app:
        await app.client.post("/telemetry/batch", json=points)
        await wait_processed(app.client)
        found = (await app.client.get("/telemetry/correlations", params={"kind": "metric"})).json()
        none = await app.client.get(
            "/telemetry/correlations", params={"kind": "metric", "until": str(T0 + 300)}
        )

    items = found["items"]
    assert len(items) == 1
    pair = items[0]
    assert {(s["service"], s["name"]) for s in pair["series"]} == {
        ("api", "cpu"),
        ("unknown", "latency"),
    }
    assert (pair["method"], pair["coefficient"], pair["buckets"]) == ("spearman", 1.0, 40)
    assert pair["p_value"] < 1e-10
    assert (pair["first_seen"], pair["last_seen"]) == (
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:53:20Z",
    )
    assert none.json()["items"] == []  # five buckets are too few to say anything


def test_series_with_gaps_are_compared_on_their_shared_buckets_only():
    rng = np.random.default_rng(4)
    ts = T0 + 60.0 * np.arange(30)
    level = np.cumsum(rng.normal(size=30))
    gappy = np.ones(30, dtype=bool)
    gappy[[3, 4, 11, 20]] = False
    shifted = 2 * level + rng.normal(0, 0.3, 30)
    snap = [
        (("api", "cpu", ()), ts, level),
        (("api", "latency", ()), ts[gappy], shifted[gappy]),
    ]
    found = co_moving(snap, CoMovementQuery(bucket_seconds=60, max_series=10), None)

    reference = stats.spearmanr(level[gappy], shifted[gappy])
    assert len(found) == 1
    assert found[0]["buckets"] == 26
    assert found[0]["coefficient"] == pytest.approx(reference.statistic, abs=1e-6)
    assert found[0]["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
