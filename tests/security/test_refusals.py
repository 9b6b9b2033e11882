"""Refusals on the audit trail, the failure limit at its edge, and what now follows the caller's
identity: the telemetry rate limit, the read cache, and who may delete for good."""

from __future__ import annotations

import httpx

from tests.api_keys import bearer, create_key, unique_name
from tests.security.conftest import FAILURE_LIMIT, TELEMETRY_LIMIT, client, source_address

CHANNELS = "/api/notification/channels/"


def _trail(admin: httpx.Client, **filters) -> list[dict]:
    return admin.get("/audit", params={"page_size": 1000, **filters}).json()["data"]


def test_401_and_403_are_on_the_trail_with_the_key_s_name(api, key_for) -> None:
    agent = unique_name("probe")
    name = unique_name("reader")
    reader = bearer(create_key(api, name, "crud:read"))

    anonymous = api.get("/audit", headers={"Authorization": "", "User-Agent": agent})
    forbidden = api.get("/audit", headers={**reader, "User-Agent": agent})

    assert (anonymous.status_code, forbidden.status_code) == (401, 403)
    entries = [e for e in _trail(api) if e["user_agent"] == agent]
    assert [
        (e["actor"], e["operation"], e["entity_type"], e["outcome"], e["status_code"])
        for e in entries
    ] == [
        (name, "authorize", "GET /audit", "failure", 403),
        ("anonymous", "authenticate", "GET /audit", "failure", 401),
    ]
    assert {e["client_address"] for e in entries} == {"127.0.0.1"}
    assert api.get("/audit/verify").json()["ok"] is True  # refusals join the hash chain


def test_failures_past_the_limit_get_429_and_are_not_audited(strict, strict_admin) -> None:
    address = source_address()
    with client(strict, address=address) as attacker:
        answers = [attacker.get("/crud/entities") for _ in range(FAILURE_LIMIT + 3)]

    statuses = [answer.status_code for answer in answers]
    assert statuses == [401] * FAILURE_LIMIT + [429] * 3
    limited = answers[FAILURE_LIMIT]
    assert limited.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json()["detail"] == "Too many failed attempts from this address; retry later."
    audited = [e for e in _trail(strict_admin, operation="authenticate")
               if e["client_address"] == address]  # fmt: skip
    assert len(audited) == FAILURE_LIMIT


def test_a_valid_key_is_admitted_from_an_address_over_its_limit(strict, strict_admin) -> None:
    # Agents behind one shared address: a flood of bad keys must not lock out a good one,
    # even one this instance has never seen used (every key is held in memory).
    address = source_address()
    bogus = [f"oek_{index:016x}_{'x' * 43}" for index in range(FAILURE_LIMIT + 20)]
    with client(strict, address=address) as shared:
        flood = [shared.get("/auth/me", headers=bearer(key)).status_code for key in bogus]
        name = unique_name("never-used")
        fresh = create_key(strict_admin, name, "crud:read")
        admitted = shared.get("/auth/me", headers=bearer(fresh))
        with_admin_key = shared.get("/auth/me", headers=strict.headers)
        still_bogus = shared.get("/auth/me", headers=bearer(bogus[0]))

    assert flood == [401] * FAILURE_LIMIT + [429] * 20
    assert (admitted.status_code, admitted.json()["data"]["name"]) == (200, name)
    assert with_admin_key.status_code == 200
    assert still_bogus.status_code == 429
    audited = [e for e in _trail(strict_admin, operation="authenticate")
               if e["client_address"] == address]  # fmt: skip
    assert len(audited) == FAILURE_LIMIT


def test_the_telemetry_rate_limit_is_kept_per_key(strict, strict_admin) -> None:
    first = bearer(create_key(strict_admin, unique_name("agent"), "telemetry:write"))
    second = bearer(create_key(strict_admin, unique_name("agent"), "telemetry:write"))
    batch = [
        {"type": "metric", "name": "limited", "value": float(i), "timestamp": 1_700_000_000 + i}
        for i in range(TELEMETRY_LIMIT)
    ]
    one = [{"type": "metric", "name": "limited", "value": 1.0, "timestamp": 1_700_000_500}]
    with client(strict) as shared_address:
        filled = shared_address.post("/telemetry/batch", json=batch, headers=first)
        over = shared_address.post("/telemetry/batch", json=one, headers=first)
        other_key = shared_address.post("/telemetry/batch", json=one, headers=second)

    assert (filled.status_code, filled.json()["accepted"]) == (202, TELEMETRY_LIMIT)
    assert over.status_code == 429
    assert "Retry-After" in over.headers
    assert other_key.status_code == 202


def test_cached_reads_are_kept_per_caller(api, key_for) -> None:
    created = api.post(CHANNELS, json={"name": unique_name("cached"), "channel_type": "email"})
    url = f"{CHANNELS}{created.json()['data']['id']}/"
    alice, bob = key_for("crud:read"), key_for("crud:read")

    seen = [
        api.get(url, headers=headers).headers["X-Cache"] for headers in (alice, alice, bob, bob)
    ]
    assert seen == ["miss", "hit", "miss", "hit"]


def test_deleting_for_good_needs_admin_on_every_surface(api, key_for) -> None:
    writer = key_for("crud:write")
    ids = [
        api.post(CHANNELS, json={"name": unique_name("hard"), "channel_type": "email"}).json()[
            "data"
        ]["id"]
        for _ in range(2)
    ]
    rest = api.delete(f"{CHANNELS}{ids[0]}/", params={"hard": "true"}, headers=writer)
    envelope = api.post(
        "/crud",
        json={"operation": "delete", "entity_type": "notification.channels",
              "entity_id": ids[0], "hard": True},
        headers=writer,
    )  # fmt: skip
    bulk = api.post(
        f"{CHANNELS}bulk/",
        json={"items": [{"operation": "delete", "entity_id": ids[0], "hard": True},
                        {"operation": "delete", "entity_id": ids[1]}]},
        headers=writer,
    )  # fmt: skip
    by_admin = api.delete(f"{CHANNELS}{ids[0]}/", params={"hard": "true"})

    assert (rest.status_code, rest.json()["required_scopes"]) == (403, ["admin"])
    assert envelope.status_code == 403
    assert [item["status"] for item in bulk.json()["results"]] == [403, 204]
    assert by_admin.status_code == 204
    history = _trail(api, entity_type="notification.channels", entity_id=ids[0])
    assert [(e["operation"], e["status_code"]) for e in history] == [
        ("delete", 204),
        ("delete", 403),
        ("delete", 403),
        ("delete", 403),
        ("create", 201),
    ]


def test_metrics_can_be_opened_to_scrapers_without_a_key(strict, middleware) -> None:
    assert httpx.get(f"{strict.url}/metrics").status_code == 200
    assert httpx.get(f"{middleware.url}/metrics").status_code == 401


def test_an_unknown_path_is_401_without_a_credential_and_404_with_one(api) -> None:
    assert api.get("/no/such/route", headers={"Authorization": ""}).status_code == 401
    assert api.get("/no/such/route").status_code == 404


def test_an_idempotency_key_replays_only_to_the_caller_who_used_it(api, key_for) -> None:
    first, second = key_for("crud:write"), key_for("crud:write")
    body = {"name": unique_name("once"), "channel_type": "email"}
    idempotency = {"Idempotency-Key": unique_name("idem")}

    created = api.post(CHANNELS, json=body, headers={**first, **idempotency})
    replayed = api.post(CHANNELS, json=body, headers={**first, **idempotency})
    other = api.post(CHANNELS, json=body, headers={**second, **idempotency})

    assert (created.status_code, replayed.headers["Idempotent-Replayed"]) == (201, "true")
    assert replayed.json() == created.json()
    assert other.status_code == 422
    assert "data" not in other.json()
