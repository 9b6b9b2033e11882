"""Telemetry through the real middleware: a labelled NAB series, facts and rules from Django."""

from __future__ import annotations

import csv
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.e2e.waiting import wait_until_processed

NAB = Path(__file__).resolve().parent.parent / "data" / "nab"
SERIES = "ec2_request_latency_system_failure.csv"
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


def utc_seconds(naive: str) -> float:
    return datetime.fromisoformat(naive).replace(tzinfo=UTC).timestamp()


def test_nab_series_is_processed_and_flagged_inside_a_labelled_window(api: httpx.Client) -> None:
    with (NAB / SERIES).open() as rows:
        points = [
            {
                "type": "metric",
                "service": "nab-e2e",
                "name": SERIES,
                "timestamp": row["timestamp"].replace(" ", "T") + "Z",
                "value": float(row["value"]),
            }
            for row in csv.DictReader(rows)
        ]
    windows = [
        (utc_seconds(start), utc_seconds(end))
        for start, end in json.loads((NAB / "windows.json").read_text())[SERIES]
    ]
    before = api.get("/telemetry/metrics").json()

    for start in range(0, len(points), 1000):
        response = api.post("/telemetry/batch", json=points[start : start + 1000])
        assert response.status_code == 202
        assert response.json()["rejected"] == []
    after = wait_until_processed(api)

    assert after["accepted"] - before["accepted"] == len(points) == 4032
    assert after["processed"] - before["processed"] == len(points)
    assert after["dropped"] == 0
    anomalies = api.get(
        "/telemetry/anomalies", params={"service": "nab-e2e", "limit": 10_000}
    ).json()["items"]
    flagged = [
        datetime.fromisoformat(item["timestamp"].replace("Z", "+00:00")).timestamp()
        for item in anomalies
    ]
    assert any(start <= moment <= end for moment in flagged for start, end in windows)
    assert all(0.0 <= item["score"] <= 1.0 for item in anomalies)


def test_a_bad_item_fails_alone(api: httpx.Client) -> None:
    name = f"bad-item-{uuid.uuid4().hex[:6]}"
    body = (
        "["
        f'{{"name": "{name}", "service": "svc", "timestamp": {T0}, "value": 1.5}},'
        f'{{"name": "{name}", "service": "svc", "timestamp": {T0 + 60}, "value": NaN}},'
        f'{{"name": "{name}", "service": "svc", "timestamp": {T0 + 120}, "value": 2.5}}'
        "]"
    )
    response = api.post(
        "/telemetry/batch", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 202
    result = response.json()
    assert result["accepted"] == 2
    assert result["duplicates"] == 0
    assert [item["index"] for item in result["rejected"]] == [1]
    assert "finite" in result["rejected"][0]["reason"]


def test_malformed_telemetry_json_is_400_problem(api: httpx.Client) -> None:
    response = api.post(
        "/telemetry/batch", content=b"[{", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_facts_and_threshold_rules_come_from_the_backend(api: httpx.Client) -> None:
    service = f"checkout-{uuid.uuid4().hex[:6]}"
    metric = f"cpu_{uuid.uuid4().hex[:6]}"
    application = {
        "name": service,
        "environment": "production",
        "team": "payments",
        "tier": "critical",
        "app_version": "2.1.0",
    }
    rule = {"name": f"hot {metric}", "metric_name": metric, "operator": "gt", "threshold": 90}
    rule |= {"evaluation_window": 60, "severity": "critical"}
    for entity_type, data in (
        ("appmetrics.applications", application),
        ("notification.alert-rules", rule),
    ):
        created = api.post(
            "/crud", json={"operation": "create", "entity_type": entity_type, "data": data}
        )
        assert created.status_code == 201, created.text
    time.sleep(0.3)  # past the facts TTL the middleware under test runs with

    values = [50.0, 95.0, 96.0, 97.0, 40.0]
    points = [
        {"name": metric, "service": service, "timestamp": T0 + 60 * i, "value": value}
        for i, value in enumerate(values)
    ]
    assert api.post("/telemetry/batch", json=points).json()["accepted"] == 5
    wait_until_processed(api)

    analysis = api.get("/telemetry/analysis", params={"limit": 10_000}).json()
    series = next(item for item in analysis["series"] if item["name"] == metric)
    assert (series["team"], series["tier"], series["service_version"]) == (
        "payments",
        "critical",
        "2.1.0",
    )
    alerts = [alert for alert in analysis["threshold_alerts"] if alert["name"] == metric]
    assert [(a["rule"], a["value"], a["timestamp"]) for a in alerts] == [
        (f"hot {metric}", 96.0, "2023-11-14T22:15:20Z")
    ]
