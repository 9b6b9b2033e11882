"""Rules, alerts, traces and series through the real middleware and the real backend."""

from __future__ import annotations

import time
import uuid

import httpx

from tests.backend_server import BackendServer
from tests.e2e.waiting import wait_until_processed

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


def _eventually(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_a_rule_posted_to_the_middleware_raises_an_alert_in_the_backend(
    api: httpx.Client, backend: BackendServer
) -> None:
    service = f"e2e-{uuid.uuid4().hex[:8]}"
    rule = {
        "name": "e2e hot disk",
        "selector": {"name": "disk", "service": service},
        "operator": "gte",
        "value": 80,
        "severity": "error",
    }
    created = api.post("/telemetry/rules", json=rule)
    assert created.status_code == 201
    points = [
        {"name": "disk", "service": service, "value": value, "timestamp": T0 + 60 * i}
        for i, value in enumerate([50.0, 85.0, 90.0, 40.0])
    ]
    assert api.post("/telemetry/batch", json=points).json()["accepted"] == 4
    wait_until_processed(api)

    alerts = api.get("/telemetry/alerts", params={"service": service}).json()["items"]
    assert [(a["state"], a["fired_at"], a["resolved_at"]) for a in alerts] == [
        ("resolved", "2023-11-14T22:14:20Z", "2023-11-14T22:16:20Z")
    ]

    def in_backend() -> list[dict]:
        found = httpx.get(
            f"{backend.url}/api/notification/alerts/",
            params={"fingerprint": alerts[0]["fingerprint"]},
            headers=backend.headers,
        ).json()["results"]
        return found if found and found[0]["status"] == "resolved" else []

    backend_alert = _eventually(in_backend)[0]
    assert (backend_alert["severity"], backend_alert["fired_at"]) == (
        "error",
        "2023-11-14T22:14:20Z",
    )
    assert api.delete(f"/telemetry/rules/{created.json()['id']}").status_code == 204


def test_a_trace_and_its_series_are_read_back(api: httpx.Client) -> None:
    trace = uuid.uuid4().hex
    web, db = f"web-{trace[:8]}", f"db-{trace[:8]}"
    spans = [
        {
            "type": "trace",
            "name": "GET /cart",
            "service": web,
            "trace_id": trace,
            "span_id": "root",
            "duration_ms": 40.0,
            "timestamp": T0,
        },
        {
            "type": "trace",
            "name": "SELECT cart",
            "service": db,
            "trace_id": trace,
            "span_id": "child",
            "parent_span_id": "root",
            "duration_ms": 25.0,
            "severity": "error",
            "timestamp": T0 + 0.01,
        },
    ]
    api.post("/telemetry/batch", json=spans)
    wait_until_processed(api)

    assembled = api.get(f"/telemetry/traces/{trace}").json()
    graph = api.get("/telemetry/services", params={"service": db}).json()
    series = api.get("/telemetry/series", params={"service": db, "name": "SELECT cart"})

    assert [s["span_id"] for s in assembled["critical_path"]] == ["root", "child"]
    assert assembled["root_cause"]["span_id"] == "child"
    assert [(e["caller"], e["callee"]) for e in graph["edges"]] == [(web, db)]
    assert [p["mean"] for p in series.json()["series"][0]["points"]] == [25.0]
