"""The analyzer through the API: a labelled NAB series, event-time order, threshold rules."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

from telemetry.detectors import SeriesDetector
from tests.telemetry.conftest import FakeSources, metric, wait_processed

NAB = Path(__file__).parents[1] / "data" / "nab"
SERIES = "ec2_request_latency_system_failure.csv"


def _nab_points() -> list[dict]:
    with (NAB / SERIES).open() as file:
        rows = list(csv.DictReader(file))
    return [
        metric(SERIES, float(row["value"]), row["timestamp"].replace(" ", "T") + "Z", service="nab")
        for row in rows
    ]


def _nab_windows() -> list[tuple[str, str]]:
    windows = json.loads((NAB / "windows.json").read_text())[SERIES]
    return [(_iso(start), _iso(end)) for start, end in windows]


def _iso(naive: str) -> str:
    moment = datetime.fromisoformat(naive).replace(tzinfo=UTC)
    return moment.isoformat().replace("+00:00", "Z")


async def test_nab_series_flags_fall_in_labelled_windows(telemetry_service):
    points = _nab_points()
    async with telemetry_service() as (client, _):
        response = await client.post("/telemetry/batch", json=points)
        assert response.json() == {"accepted": 4032, "rejected": [], "duplicates": 0}
        metrics = await wait_processed(client)
        assert (metrics["processed"], metrics["analysed"], metrics["late"]) == (4032, 4032, 0)

        found = await client.get(
            "/telemetry/anomalies", params={"service": "nab", "name": SERIES, "limit": 1000}
        )

    items = found.json()["items"]
    stamps = [item["timestamp"] for item in items]
    windows = _nab_windows()
    inside = [any(start <= ts <= end for start, end in windows) for ts in stamps]
    hit_windows = [any(start <= ts <= end for ts in stamps) for start, end in windows]
    assert stamps == sorted(stamps)
    assert hit_windows == [True, True, True]
    assert inside == [True, True, True]  # one flag per incident, none outside
    assert all(0.0 <= item["score"] <= 1.0 for item in items)
    assert {item["service"] for item in items} == {"nab"}


async def test_backfill_in_reverse_is_analysed_in_event_time(telemetry_service):
    points = _nab_points()
    async with telemetry_service() as (client, _):
        await client.post("/telemetry/batch", json=points)
        await wait_processed(client)
        forward = (await client.get("/telemetry/anomalies", params={"limit": 1000})).json()

    async with telemetry_service() as (client, _):
        await client.post("/telemetry/batch", json=points[::-1])
        await wait_processed(client)
        backward = (await client.get("/telemetry/anomalies", params={"limit": 1000})).json()

    def summary(found: dict) -> list[tuple]:
        return [(a["timestamp"], a["value"], a["detector"]) for a in found["items"]]

    assert len(forward["items"]) == 3
    assert summary(backward) == summary(forward)


def test_a_flag_depends_only_on_the_point_and_earlier_ones():
    values = [10.0 + (i % 7) * 0.1 for i in range(200)] + [30.0] + [10.0] * 50
    full = SeriesDetector()
    flags_full = [full.observe(value)[0] for value in values]
    prefix = SeriesDetector()
    flags_prefix = [prefix.observe(value)[0] for value in values[:201]]

    assert flags_full[:201] == flags_prefix
    assert [i for i, flag in enumerate(flags_full) if flag is not None] == [200]
    assert flags_full[200].detector == "zscore"


async def test_one_incident_is_one_anomaly(telemetry_service):
    base = 1_700_000_000
    values = [50.0 + (i % 5) for i in range(300)] + [500.0] * 20
    points = [
        metric("latency", value, base + 60 * i, service="api") for i, value in enumerate(values)
    ]
    async with telemetry_service() as (client, _):
        await client.post("/telemetry/batch", json=points)
        await wait_processed(client)
        items = (await client.get("/telemetry/anomalies", params={"service": "api"})).json()[
            "items"
        ]

    assert [(item["timestamp"], item["value"]) for item in items] == [
        ("2023-11-15T03:13:20Z", 500.0)
    ]


async def test_threshold_rule_from_the_backend_raises_one_alert(telemetry_service):
    rules = [
        {
            "name": "hot cpu",
            "metric_name": "cpu",
            "operator": "gt",
            "threshold": 90.0,
            "evaluation_window": 120,
            "severity": "critical",
            "is_active": True,
        },
        {
            "name": "retired",
            "metric_name": "cpu",
            "operator": "gt",
            "threshold": 0.0,
            "evaluation_window": 0,
            "severity": "info",
            "is_active": False,
        },
    ]
    base = 1_700_000_000
    values = [50.0, 95.0, 96.0, 97.0, 98.0, 99.0, 40.0]
    points = [metric("cpu", value, base + 60 * i, service="api") for i, value in enumerate(values)]
    async with telemetry_service(FakeSources(alert_rules=rules)) as (client, _):
        await client.post("/telemetry/batch", json=points)
        await wait_processed(client)
        analysis = (await client.get("/telemetry/analysis")).json()

    assert analysis["threshold_alerts"] == [
        {
            "rule": "hot cpu",
            "service": "api",
            "name": "cpu",
            "attributes": {},
            "timestamp": "2023-11-14T22:16:20Z",
            "breach_started": "2023-11-14T22:14:20Z",
            "value": 97.0,
            "operator": "gt",
            "threshold": 90.0,
            "severity": "critical",
            "team": None,
            "tier": None,
        }
    ]
