"""Service facts (backend or service map), client address and location, time context."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from telemetry.addresses import AddressInfo
from telemetry.enricher import Enricher
from telemetry.points import parse_point
from telemetry.processor import Processor
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
FACTS = ("team", "tier", "environment", "service_version")


async def _series(client) -> dict:
    analysis = (await client.get("/telemetry/analysis")).json()
    return {series["name"]: series for series in analysis["series"]}


def _batch(*timestamps: float, client_address: str | None = None):
    points = []
    for ts in timestamps:
        point, errors = parse_point(metric("cpu", 1.0, ts, service="api"), now=ts)
        assert errors == []
        point["client_address"] = client_address
        points.append(point)
    return Processor(100, 100).process(points)


@pytest.fixture(scope="module")
def geo_database(tmp_path_factory) -> Path:
    # No MaxMind database may be downloaded in tests, so the test writes a small one in the
    # documented MMDB format with the `mmdb-writer` package and reads it back with `maxminddb`.
    path = tmp_path_factory.mktemp("geo") / "city.mmdb"
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City")
    writer.insert_network(
        IPSet(["81.2.69.0/24"]),
        {
            "country": {"iso_code": "GB"},
            "city": {"names": {"en": "London"}},
            "location": {"latitude": 51.5142, "longitude": -0.0931},
        },
    )
    writer.to_db_file(str(path))
    return path


async def test_known_service_gets_team_and_tier_and_keeps_them_when_source_fails(
    telemetry_service, caplog
):
    sources = FakeSources(applications=[CHECKOUT])
    settings = {"telemetry_service_facts_ttl_seconds": 0.001}
    async with telemetry_service(sources, **settings) as (client, _):
        await client.post("/telemetry", json=metric("latency", 12.0, T0, service="checkout"))
        await client.post("/telemetry", json=metric("queue", 3.0, T0, service="unknown-svc"))
        await wait_processed(client)
        series = await _series(client)
        assert {fact: series["latency"][fact] for fact in FACTS} == {
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


async def test_a_service_map_file_replaces_the_backend(telemetry_service, tmp_path):
    service_map = tmp_path / "services.json"
    service_map.write_text(
        json.dumps({"checkout": {"team": "web", "tier": "high", "version": "9.0.1"}})
    )
    sources = FakeSources(applications=[CHECKOUT])
    async with telemetry_service(sources, telemetry_service_map_file=service_map) as (client, _):
        await client.post("/telemetry", json=metric("latency", 12.0, T0, service="checkout"))
        await wait_processed(client)
        series = await _series(client)

    assert {fact: series["latency"][fact] for fact in FACTS} == {
        "team": "web",
        "tier": "high",
        "environment": None,
        "service_version": "9.0.1",
    }
    assert sources.calls["applications"] == 0


def test_a_malformed_service_map_fails_the_start(tmp_path):
    service_map = tmp_path / "services.json"
    service_map.write_text('["checkout"]')
    with pytest.raises(ValueError, match="must map service names to objects"):
        Enricher(None, service_map=service_map)


def test_time_context_follows_the_zone_across_daylight_saving():
    # Europe/Berlin moved from UTC+1 to UTC+2 at 2024-03-31T01:00:00Z.
    before, after = 1_711_846_800 - 1_800, 1_711_846_800 + 1_800
    batch = _batch(before, after)
    Enricher(None, time_zone="Europe/Berlin").enrich(batch)
    assert [(p["hour_of_day"], p["weekday"]) for p in batch.points] == [(1, 6), (3, 6)]

    utc = _batch(before, after)
    Enricher(None).enrich(utc)
    assert [(p["hour_of_day"], p["weekday"]) for p in utc.points] == [(0, 6), (1, 6)]


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.9", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("8.8.8.8", "public"),
        ("2001:4860:4860::8888", "public"),
        ("not-an-ip", None),
    ],
)
def test_client_addresses_are_classified(address, network):
    assert AddressInfo().describe(address)["client_network"] == network


def test_public_addresses_are_geolocated_from_the_mmdb_file(geo_database):
    addresses = AddressInfo(geo_database)
    try:
        london = addresses.describe("81.2.69.160")
        elsewhere = addresses.describe("8.8.8.8")
        private = addresses.describe("10.0.0.1")
    finally:
        addresses.close()

    assert london == {
        "client_network": "public",
        "client_country": "GB",
        "client_city": "London",
        "client_latitude": 51.5142,
        "client_longitude": -0.0931,
    }
    assert elsewhere["client_network"] == "public"
    assert elsewhere["client_country"] is None
    assert private["client_country"] is None


def test_the_enricher_adds_the_client_location_to_each_point(geo_database):
    batch = _batch(T0, client_address="81.2.69.160")
    enricher = Enricher(None, addresses=AddressInfo(geo_database))
    enricher.enrich(batch)
    enricher.close()
    point = batch.points[0]
    assert (point["client_network"], point["client_country"], point["client_city"]) == (
        "public",
        "GB",
        "London",
    )


async def test_the_sender_address_reaches_the_enricher(telemetry_service):
    async with telemetry_service() as (client, pipeline):
        seen = []
        enrich = pipeline.enricher.enrich

        def spy(batch):
            enrich(batch)
            seen.extend(p["client_network"] for p in batch.points)

        pipeline.enricher.enrich = spy
        await client.post("/telemetry", json=metric("cpu", 1.0, T0, service="api"))
        await wait_processed(client)

    assert seen == ["loopback"]
