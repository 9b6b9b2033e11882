"""Errors linked across services by trace id, within the correlation window."""

from __future__ import annotations

from tests.telemetry.conftest import wait_processed

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


async def test_error_in_two_services_of_one_trace_is_one_correlation(telemetry_service):
    points = [
        _span("api", "a1", 0.0),
        _span("db", "d1", 0.5, parent_span_id="a1", attributes={"status": "ERROR"}),
        {
            "type": "log",
            "name": "request failed",
            "service": "api",
            "trace_id": "t1",
            "severity": "ERROR",
            "message": "upstream db failed",
            "timestamp": T0 + 1.0,
        },
        _span("web", "w1", 2.0, trace="t2"),  # a trace without errors is no correlation
    ]
    async with telemetry_service() as (client, _):
        response = await client.post("/telemetry/batch", json=points)
        assert response.json()["accepted"] == 4
        await wait_processed(client)
        items = (await client.get("/telemetry/correlations")).json()["items"]

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


async def test_errors_further_apart_than_the_window_are_not_linked(telemetry_service):
    points = [
        {
            "type": "event",
            "name": "deploy failed",
            "service": "ci",
            "correlation_id": "c9",
            "severity": "critical",
            "timestamp": T0,
        },
        {
            "type": "event",
            "name": "rollback failed",
            "service": "cd",
            "correlation_id": "c9",
            "severity": "error",
            "timestamp": T0 + 120,
        },
    ]
    async with telemetry_service(telemetry_correlation_window_seconds=60) as (client, _):
        await client.post("/telemetry/batch", json=points)
        await wait_processed(client)
        items = (await client.get("/telemetry/correlations")).json()["items"]

    assert [(c["kind"], c["id"], c["services"], c["error_services"]) for c in items] == [
        ("correlation", "c9", ["cd", "ci"], ["ci"])
    ]
    assert items[0]["cross_service"] is False
