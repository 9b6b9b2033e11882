"""Service facts from the backend's applications, kept when the backend goes down."""

from __future__ import annotations

import logging

from tests.telemetry.conftest import FakeSources, metric, wait_processed

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z, a Tuesday
CHECKOUT = {
    "name": "checkout",
    "app_version": "2.1.0",
    "environment": "production",
    "team": "payments",
    "tier": "critical",
    "host": "10.0.0.7",
    "port": 8080,
}


async def _series(client) -> dict:
    analysis = (await client.get("/telemetry/analysis")).json()
    return {series["name"]: series for series in analysis["series"]}


async def test_known_service_gets_team_and_tier_and_keeps_them_when_source_fails(
    telemetry_service, caplog
):
    sources = FakeSources(applications=[CHECKOUT])
    facts = ("team", "tier", "environment", "service_version")
    settings = {"telemetry_service_facts_ttl_seconds": 0.001}
    async with telemetry_service(sources, **settings) as (client, _):
        await client.post("/telemetry", json=metric("latency", 12.0, T0, service="checkout"))
        await client.post("/telemetry", json=metric("queue", 3.0, T0, service="unknown-svc"))
        await wait_processed(client)
        series = await _series(client)
        assert {fact: series["latency"][fact] for fact in facts} == {
            "team": "payments",
            "tier": "critical",
            "environment": "production",
            "service_version": "2.1.0",
        }
        assert series["queue"]["team"] is None

        sources.failing = True
        with caplog.at_level(logging.WARNING, logger="telemetry.sources"):
            for offset in (60, 120, 180):
                point = metric("errors", 1.0, T0 + offset, service="checkout")
                await client.post("/telemetry", json=point)
                await wait_processed(client)

        series = await _series(client)
        metrics = (await client.get("/telemetry/metrics")).json()

    assert (series["errors"]["team"], series["errors"]["tier"]) == ("payments", "critical")
    assert series["errors"]["points"] == 3
    assert metrics["sources_failing"] is True
    warnings = [r for r in caplog.records if r.name == "telemetry.sources"]
    assert [r.getMessage() for r in warnings] == [
        "Cannot read backend applications (ConnectionError: backend unreachable); "
        "using the last good copy of 1 records.",
        "Cannot read backend alert rules (ConnectionError: backend unreachable); "
        "using the last good copy of 0 records.",
    ]


async def test_time_context_is_hour_and_weekday_in_utc(telemetry_service):
    async with telemetry_service() as (client, pipeline):
        spike = [metric("cpu", 1.0 + (i % 3), T0 + 60 * i, service="api") for i in range(100)]
        spike.append(metric("cpu", 500.0, T0 + 6000, service="api"))
        await client.post("/telemetry/batch", json=spike)
        await wait_processed(client)
        items = (await client.get("/telemetry/anomalies")).json()["items"]

    assert [(a["timestamp"], a["hour_of_day"], a["weekday"]) for a in items] == [
        ("2023-11-14T23:53:20Z", 23, 1)
    ]
