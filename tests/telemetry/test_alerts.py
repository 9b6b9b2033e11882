"""Threshold rules through the API, the alert lifecycle with hysteresis, persistence and the
backend's `notification.alerts` (a real reference backend on loopback)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from django_integration.api_client import BackendClient
from service.settings import Settings
from telemetry import alert_store
from telemetry.alert_sink import AlertSink
from telemetry.alerts import AlertBook
from telemetry.rules import RuleBook
from tests.backend_server import BackendServer
from tests.integration.databases import migrated_database
from tests.telemetry.analysis_app import analysis_service
from tests.telemetry.conftest import FakeSources, metric, wait_processed

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
HOT_CPU = {
    "name": "hot cpu",
    "selector": {"name": "cpu", "service": "api"},
    "operator": "gt",
    "value": 90,
    "for_seconds": 120,
    "severity": "critical",
    "hysteresis": 5,
}


def _cpu(*values: float, start: int = 0, service: str = "api") -> list[dict]:
    return [
        metric("cpu", value, T0 + 60 * (start + i), service=service)
        for i, value in enumerate(values)
    ]


def _summary(alerts: list[dict]) -> list[tuple]:
    return [(a["state"], a["started_at"], a["fired_at"], a["resolved_at"]) for a in alerts]


@pytest.fixture
def service(tmp_path):
    return lambda **kwargs: analysis_service(tmp_path, **kwargs)


@pytest.fixture(scope="module")
def own_backend():
    with BackendServer() as server:
        yield server


async def test_rules_are_added_listed_and_deleted(service):
    backend_rule = {
        "id": "7b0c",
        "name": "slow",
        "metric_name": "latency",
        "operator": "gte",
        "threshold": 500,
        "evaluation_window": 60,
        "severity": "warning",
    }
    async with service(sources=FakeSources(alert_rules=[backend_rule])) as app:
        client = app.client
        await client.post("/telemetry", json=metric("warm-up", 1.0, T0))  # loads the rules
        await wait_processed(client)
        created = await client.post("/telemetry/rules", json=HOT_CPU)
        listed = (await client.get("/telemetry/rules")).json()["items"]
        rule_id = created.json()["id"]
        deleted = await client.delete(f"/telemetry/rules/{rule_id}")
        again = await client.delete(f"/telemetry/rules/{rule_id}")
        from_backend = await client.delete("/telemetry/rules/backend:7b0c")
        remaining = (await client.get("/telemetry/rules")).json()["items"]

    assert created.status_code == 201
    assert created.headers["location"] == f"/telemetry/rules/{rule_id}"
    assert created.json() == {
        "id": rule_id,
        "name": "hot cpu",
        "selector": {"name": "cpu", "service": "api", "attributes": {}},
        "operator": "gt",
        "value": 90.0,
        "for_seconds": 120.0,
        "severity": "critical",
        "hysteresis": 5.0,
        "source": "api",
    }
    assert [(rule["name"], rule["source"]) for rule in listed] == [
        ("hot cpu", "api"),
        ("slow", "backend"),
    ]
    assert listed[1]["hysteresis"] == 25.0  # 5 % of the threshold by default
    assert (deleted.status_code, again.status_code, from_backend.status_code) == (204, 404, 409)
    assert again.headers["content-type"] == "application/problem+json"
    assert [rule["id"] for rule in remaining] == ["backend:7b0c"]


async def test_an_invalid_rule_is_a_422_with_field_errors(service):
    bad = {**HOT_CPU, "operator": "bigger", "for_seconds": -1, "extra": True}
    async with service() as app:
        response = await app.client.post("/telemetry/rules", json=bad)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert sorted(error["field"] for error in response.json()["errors"]) == [
        "extra",
        "for_seconds",
        "operator",
    ]


async def test_the_number_of_rules_is_bounded(service):
    async with service(telemetry_max_rules=1) as app:
        first = await app.client.post("/telemetry/rules", json=HOT_CPU)
        second = await app.client.post("/telemetry/rules", json={**HOT_CPU, "name": "other"})

    assert (first.status_code, second.status_code) == (201, 409)
    assert second.json()["detail"] == "At most 1 threshold rules can be in force."


async def test_an_alert_goes_pending_firing_resolved_without_flapping(service):
    async with service() as app:
        client = app.client
        await client.post("/telemetry/rules", json=HOT_CPU)
        # 95 opens a breach; it fires once held 120 s; 89 and 88 hover inside the hysteresis.
        await client.post("/telemetry/batch", json=_cpu(50, 95, 91, 96, 89, 92, 88))
        await wait_processed(client)
        firing = (await client.get("/telemetry/alerts", params={"state": "firing"})).json()
        # 84 is past the hysteresis: resolved. 95 then 80 is a breach that never fires.
        await client.post("/telemetry/batch", json=_cpu(84, 95, 80, start=7))
        await client.post("/telemetry/batch", json=_cpu(99, service="web"))  # not selected
        await wait_processed(client)
        alerts = (await client.get("/telemetry/alerts")).json()["items"]
        metrics = (await client.get("/telemetry/metrics")).json()

    assert _summary(firing["items"]) == [
        ("firing", "2023-11-14T22:14:20Z", "2023-11-14T22:16:20Z", None),
    ]
    assert _summary(alerts) == [
        ("resolved", "2023-11-14T22:21:20Z", None, "2023-11-14T22:22:20Z"),
        ("resolved", "2023-11-14T22:14:20Z", "2023-11-14T22:16:20Z", "2023-11-14T22:20:20Z"),
    ]
    assert {key: alerts[1][key] for key in ("rule", "service", "name", "severity")} == {
        "rule": "hot cpu",
        "service": "api",
        "name": "cpu",
        "severity": "critical",
    }
    assert (alerts[1]["value"], alerts[1]["threshold"], alerts[1]["operator"]) == (84.0, 90.0, "gt")
    assert metrics["threshold_alerts"] == 1


OUTSIDE_STORED_TIMES = {"field": None, "message": "must be between the years 1000 and 9999 UTC"}


async def test_alert_times_outside_what_is_stored_are_422_and_alerts_still_listed(service):
    async with service() as app:
        await app.client.post("/telemetry/rules", json=HOT_CPU)
        await app.client.post("/telemetry/batch", json=_cpu(95, 96, 97))
        await wait_processed(app.client)
        answers = {
            (field, text): await app.client.get("/telemetry/alerts", params={field: text})
            for field, text in [
                ("since", "1e20"),
                ("until", "-99999999999999"),
                ("since", "9999-12-31T23:59:59-14:00"),
            ]
        }
        within = (await app.client.get("/telemetry/alerts", params={"since": "1000-01-01"})).json()

    assert {key: (a.status_code, a.json()["errors"]) for key, a in answers.items()} == {
        key: (422, [{**OUTSIDE_STORED_TIMES, "field": key[0]}]) for key in answers
    }
    assert _summary(within["items"]) == [
        ("firing", "2023-11-14T22:13:20Z", "2023-11-14T22:15:20Z", None),
    ]


async def test_rules_and_alerts_survive_a_restart(service):
    async with service() as app:
        rule_id = (await app.client.post("/telemetry/rules", json=HOT_CPU)).json()["id"]
        await app.client.post("/telemetry/batch", json=_cpu(95, 96, 97))
        await wait_processed(app.client)

    async with service() as app:
        rules = (await app.client.get("/telemetry/rules")).json()["items"]
        alerts = (await app.client.get("/telemetry/alerts")).json()["items"]
        # The restored rule is in force: a new breach on another series opens a new alert.
        await app.client.post("/telemetry/batch", json=_cpu(99, start=10, service="api"))
        await wait_processed(app.client)
        pending = (await app.client.get("/telemetry/alerts", params={"state": "pending"})).json()

    assert [rule["id"] for rule in rules] == [rule_id]
    assert _summary(alerts) == [
        ("firing", "2023-11-14T22:13:20Z", "2023-11-14T22:15:20Z", None),
    ]
    assert _summary(pending["items"]) == [("pending", "2023-11-14T22:23:20Z", None, None)]


async def test_the_backend_rule_raises_the_same_lifecycle(service):
    rule = {
        "id": "r1",
        "name": "hot cpu",
        "metric_name": "cpu",
        "operator": "gt",
        "threshold": 90.0,
        "evaluation_window": 120,
        "severity": "critical",
        "is_active": True,
    }
    retired = {**rule, "id": "r2", "name": "retired", "threshold": 0.0, "is_active": False}
    async with service(sources=FakeSources(alert_rules=[rule, retired])) as app:
        await app.client.post("/telemetry/batch", json=_cpu(50, 95, 96, 97, 98, 99, 40))
        await wait_processed(app.client)
        analysis = (await app.client.get("/telemetry/analysis")).json()
        alerts = (await app.client.get("/telemetry/alerts")).json()["items"]

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
    assert _summary(alerts) == [
        ("resolved", "2023-11-14T22:14:20Z", "2023-11-14T22:16:20Z", "2023-11-14T22:19:20Z"),
    ]
    assert alerts[0]["rule_id"] == "backend:r1"


async def _backend_alerts(server: BackendServer, fingerprint: str) -> list[dict]:
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers) as http:
        response = await http.get("/api/notification/alerts/", params={"fingerprint": fingerprint})
    return response.json()["results"]


async def _eventually(check, deadline: float = 15.0):
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline
    while True:
        result = await check()
        if result or loop.time() > give_up:
            return result
        await asyncio.sleep(0.05)


def _client_for(server: BackendServer) -> BackendClient:
    settings = Settings(
        backend_url=server.url, backend_token=server.token, backend_retry_attempts=1
    )
    return BackendClient(settings, base_url=server.url, token=server.token)


async def test_firing_and_resolved_alerts_reach_the_backend(service, own_backend):
    backend = _client_for(own_backend)
    try:
        async with service(backend=backend) as app:
            await app.client.post("/telemetry/rules", json={**HOT_CPU, "for_seconds": 0})
            await app.client.post("/telemetry/batch", json=_cpu(95))
            await wait_processed(app.client)
            alert = (await app.client.get("/telemetry/alerts")).json()["items"][0]

            async def firing():
                found = await _backend_alerts(own_backend, alert["fingerprint"])
                return found if found and found[0]["status"] == "firing" else None

            fired = await _eventually(firing)
            await app.client.post("/telemetry/batch", json=_cpu(50, start=1))
            await wait_processed(app.client)

            async def resolved():
                found = await _backend_alerts(own_backend, alert["fingerprint"])
                return found if found and found[0]["status"] == "resolved" else None

            done = await _eventually(resolved)
            synced = (await app.client.get("/telemetry/alerts")).json()["items"][0]
    finally:
        await backend.close()

    assert len(fired) == 1
    assert (fired[0]["severity"], fired[0]["fired_at"]) == ("critical", "2023-11-14T22:13:20Z")
    assert fired[0]["title"] == "hot cpu: api/cpu"
    assert len(done) == 1
    assert done[0]["resolved_at"] == "2023-11-14T22:14:20Z"
    assert synced["backend_id"] == fired[0]["id"]


async def test_alerts_raised_while_the_backend_is_down_reach_it_later(service, own_backend):
    backend = _client_for(own_backend)
    try:
        async with service(backend=backend) as app:
            await app.client.post("/telemetry/rules", json={**HOT_CPU, "for_seconds": 0})
            own_backend.kill()
            try:
                await app.client.post("/telemetry/batch", json=_cpu(97, 50, 98, start=100))
                await wait_processed(app.client)
                await asyncio.sleep(0.3)  # a few sink rounds fail meanwhile
                failing = app.sink.backend_failing
            finally:
                own_backend.start()
            alerts = (await app.client.get("/telemetry/alerts")).json()["items"]

            async def both_arrived():
                found = await _backend_alerts(own_backend, alerts[0]["fingerprint"])
                return found if len(found) == 2 else None

            arrived = await _eventually(both_arrived, deadline=90.0)
    finally:
        await backend.close()

    assert failing is True
    assert [a["state"] for a in alerts] == ["firing", "resolved"]
    assert sorted((a["status"], a["fired_at"]) for a in arrived) == [
        ("firing", "2023-11-14T23:55:20Z"),
        ("resolved", "2023-11-14T23:53:20Z"),
    ]


async def test_an_alert_of_a_rule_removed_in_the_backend_is_resolved(service):
    rule = {
        "id": "r1",
        "name": "hot cpu",
        "metric_name": "cpu",
        "operator": "gt",
        "threshold": 90.0,
        "evaluation_window": 1,
    }
    sources = FakeSources(alert_rules=[rule])
    settings = {"telemetry_service_facts_ttl_seconds": 0.001}
    async with service(sources=sources, **settings) as app:
        await app.client.post("/telemetry/batch", json=_cpu(95, 96))
        await wait_processed(app.client)
        firing = (await app.client.get("/telemetry/alerts")).json()["items"]
        sources.records["alert_rules"] = []
        await asyncio.sleep(0.01)  # past the cache's TTL
        await app.client.post("/telemetry/batch", json=_cpu(97, start=2))
        await wait_processed(app.client)
        after = (await app.client.get("/telemetry/alerts")).json()["items"]
        rules = (await app.client.get("/telemetry/rules")).json()["items"]

    assert [a["state"] for a in firing] == ["firing"]
    assert [a["state"] for a in after] == ["resolved"]
    assert rules == []


async def test_saving_failures_are_logged_when_they_start_and_end(tmp_path, caplog):
    async with migrated_database("sqlite", tmp_path) as database:
        book = AlertBook(10)
        sink = AlertSink(database, book, RuleBook(None, 10, 0.05), interval=0.01)
        await sink.start()
        async with database.engine.begin() as connection:
            await connection.run_sync(alert_store.alerts.drop)  # every save fails from here

        with caplog.at_level("INFO", logger="telemetry.alert_sink"):
            book.put_back([_alert_change("a1")])
            await _until(lambda: sink.saving_failing)
            await asyncio.sleep(0.1)  # about ten more failing rounds
            async with database.engine.begin() as connection:
                await connection.run_sync(alert_store.alerts.create)
            book.put_back([_alert_change("a2")])
            await _until(lambda: not sink.saving_failing)
        await sink.stop()

    sink_records = [r for r in caplog.records if r.name == "telemetry.alert_sink"]
    assert [(r.levelname, r.getMessage()) for r in sink_records] == [
        ("ERROR", "Saving alerts failed; retrying every round until it works."),
        ("INFO", "Alerts are saved again."),
    ]


def _alert_change(alert_id: str) -> dict:
    return {
        "id": alert_id,
        "fingerprint": "f",
        "rule": "hot cpu",
        "rule_id": "r1",
        "service": "api",
        "name": "cpu",
        "attributes": {},
        "severity": "critical",
        "state": "firing",
        "operator": "gt",
        "value": 95.0,
        "threshold": 90.0,
        "started_at": T0,
        "updated_at": T0 + 60,
    }


async def _until(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
