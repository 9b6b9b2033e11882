"""The audit trail: field-level changes, refused attempts, redaction, filters, the hash chain."""

from __future__ import annotations

import sqlite3
import uuid

import httpx
import pytest

from tests.api_keys import bearer, create_key

CONFIGS = "/api/core/configurations/"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_history_of_one_entity_with_refusals(api: httpx.Client) -> None:
    bob = unique("bob")
    # X-Actor is a claim anyone can make: the actor is the key's name whatever it says.
    headers = {
        **bearer(create_key(api, bob, "crud:write")),
        "X-Actor": "mallory",
        "User-Agent": "dashboard/1.0",
    }
    created = api.post(
        CONFIGS, json={"key": unique("k"), "value": {"days": 1}}, headers=headers
    ).json()["data"]
    url = f"{CONFIGS}{created['id']}/"
    api.patch(url, json={"value": {"days": 2}}, headers=headers)
    api.patch(url, json={"value": {"days": 3}}, headers={**headers, "If-Match": '"1"'})
    api.patch(url, json={"version": 9}, headers=headers)

    history = api.get(f"/audit/core/configurations/{created['id']}").json()
    entries = [(e["operation"], e["status_code"], e["outcome"]) for e in history["data"]]
    assert entries == [
        ("update", 422, "failure"),
        ("update", 412, "failure"),
        ("update", 200, "success"),
        ("create", 201, "success"),
    ]
    success = history["data"][2]
    assert success["changes"]["value"] == {"old": {"days": 1}, "new": {"days": 2}}
    assert (success["actor"], success["user_agent"]) == (bob, "dashboard/1.0")
    assert success["client_address"] == "127.0.0.1"


def test_sensitive_values_are_redacted(api: httpx.Client) -> None:
    value = {
        "user": "svc",
        "password": "hunter2",
        "nested": {"api_key": "abc"},
        "pagerduty": {"routing_key": "R0ut1ng", "severity": "critical"},
        "slack": {"webhookUrl": "https://hooks.example/T0/B0/s3cr3t"},
        "tls": {"Private-Key": "-----BEGIN", "credentials": ["x"]},
        "spellings": {"routingKey": "1", "Routing Key": "2", "PrivateKeyPem": "3"},
        "pagerduty_v1": {"service_key": "4", "integration_key": "5"},
    }
    created = api.post(CONFIGS, json={"key": unique("secret"), "value": value}).json()["data"]
    entry = api.get(f"/audit/core/configurations/{created['id']}").json()["data"][0]
    assert entry["changes"]["value"]["new"] == {
        "user": "svc",
        "password": "[redacted]",
        "nested": {"api_key": "[redacted]"},
        "pagerduty": {"routing_key": "[redacted]", "severity": "critical"},
        "slack": {"webhookUrl": "[redacted]"},
        "tls": {"Private-Key": "[redacted]", "credentials": "[redacted]"},
        "spellings": {
            "routingKey": "[redacted]",
            "Routing Key": "[redacted]",
            "PrivateKeyPem": "[redacted]",
        },
        "pagerduty_v1": {"service_key": "[redacted]", "integration_key": "[redacted]"},
    }


def test_audit_filters(api: httpx.Client) -> None:
    actor = unique("carol")
    carol = bearer(create_key(api, actor, "crud:write"))
    api.post(CONFIGS, json={"key": unique("k"), "value": 1}, headers=carol)
    api.post(CONFIGS, json={"key": 5}, headers=carol)
    failures = api.get("/audit", params={"actor": actor, "outcome": "failure"}).json()
    assert [(e["operation"], e["status_code"]) for e in failures["data"]] == [("create", 422)]
    everything = api.get("/audit", params={"actor": actor, "operation": "create"}).json()
    assert everything["page_info"]["total_count"] == 2
    assert api.get("/audit", params={"since": "2999-01-01T00:00:00Z"}).json()["data"] == []


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (
            {"until": "9999-12-31T23:59:59-14:00"},
            {"field": "until", "message": "must be between the years 1000 and 9999 UTC"},
        ),
        (
            {"since": "0999-12-31T23:59:59Z"},
            {"field": "since", "message": "must be between the years 1000 and 9999 UTC"},
        ),
        (
            {"actor": "a\x00b"},
            {"field": "actor", "message": "Holds the control character U+0000."},
        ),
    ],
)
def test_audit_queries_the_database_cannot_hold_are_422(api: httpx.Client, params, error) -> None:
    response = api.get("/audit", params=params)

    assert (response.status_code, response.json()["errors"]) == (422, [error])


def test_verify_finds_a_row_altered_in_the_database(api: httpx.Client, middleware) -> None:
    for _ in range(3):
        api.post(CONFIGS, json={"key": unique("chain"), "value": 1})
    report = api.get("/audit/verify").json()
    assert (report["ok"], report["first_broken"]) == (True, None)
    total = report["entries_checked"]

    database = sqlite3.connect(middleware.data_dir / "observer.db")
    with database:
        seq, actor = database.execute(
            "SELECT seq, actor FROM audit_entries ORDER BY seq LIMIT 1 OFFSET 1"
        ).fetchone()
        database.execute("UPDATE audit_entries SET actor = 'mallory' WHERE seq = ?", (seq,))
    try:
        broken = api.get("/audit/verify").json()
        assert broken["ok"] is False
        assert broken["entries_checked"] == 1
        assert broken["first_broken"]["seq"] == seq
        assert broken["first_broken"]["reason"] == (
            "content does not match its hash (the entry was altered)"
        )
    finally:
        with database:
            database.execute("UPDATE audit_entries SET actor = ? WHERE seq = ?", (actor, seq))
        database.close()
    assert api.get("/audit/verify").json()["ok"] is True  # mended: the chain holds again
    assert total >= 3
