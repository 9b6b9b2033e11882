"""Probes: live, ready, and the backend's health as the middleware sees it."""

import json
import time

import httpx


def test_live_and_ready(api: httpx.Client) -> None:
    assert api.get("/health/live").json() == {"status": "ok"}
    ready = api.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"]["ok"] is True
    assert ready.json()["checks"]["pipeline"] == {"ok": True}


def test_django_health_reports_reachable_backend(api: httpx.Client, backend) -> None:
    report = api.get("/django/health").json()
    assert report["reachable"] is True
    assert report["backend"] == "remote"  # the URL stays out of answers
    assert report["breaker"]["state"] == "closed"
    assert report["missing_apps"] == []
    assert len(report["entity_types"]) == 10


def test_one_json_log_line_per_request(api, middleware) -> None:
    api.get("/health/live", headers={"X-Request-ID": "log-line-probe"})
    # The line is written once the answer has gone out: give the server a moment.
    for _ in range(50):
        lines = [json.loads(ln) for ln in middleware.log().splitlines() if "log-line-probe" in ln]
        if lines:
            break
        time.sleep(0.05)
    assert len(lines) == 1
    line = lines[0]
    assert (line["logger"], line["event"], line["method"], line["path"], line["status"]) == (
        "observer.request",
        "request",
        "GET",
        "/health/live",
        200,
    )
    assert line["duration_ms"] >= 0
