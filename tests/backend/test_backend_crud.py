"""Create, read, update and validate resources, with exact bodies, versions and ETags."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

Content = Callable[[dict[str, Any]], dict[str, Any]]
Unique = Callable[[str], str]

CHANNELS = "/api/notification/channels/"
RULES = "/api/notification/alert-rules/"
APPLICATIONS = "/api/appmetrics/applications/"
METRICS = "/api/appmetrics/metrics/"
SOURCES = "/api/analytics/data-sources/"
TEMPLATES = "/api/template_dashboards/templates/"
DASHBOARDS = "/api/template_dashboards/dashboards/"
CONFIGURATIONS = "/api/core/configurations/"


def create(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_minimal_channel_create_fills_defaults(
    client: httpx.Client, unique: Unique, content: Content
) -> None:
    name = unique("ops")
    response = client.post(CHANNELS, json={"name": name, "channel_type": "slack"})

    assert response.status_code == 201
    assert response.headers["ETag"] == '"1"'
    assert content(response.json()) == {
        "version": 1,
        "is_active": True,
        "name": name,
        "channel_type": "slack",
        "configuration": {},
        "rate_limit_per_hour": 60,
        "is_enabled": True,
    }


def test_read_back_equals_created(client: httpx.Client, unique: Unique) -> None:
    created = create(client, SOURCES, {"name": unique("prom"), "source_type": "prometheus"})

    response = client.get(f"{SOURCES}{created['id']}/")

    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    assert response.json() == created
    assert created["sync_frequency"] == 60
    assert created["connection_config"] == {}


def test_patch_and_put_bump_version_by_one(
    client: httpx.Client, unique: Unique, content: Content
) -> None:
    name = unique("mail")
    created = create(client, CHANNELS, {"name": name, "channel_type": "email"})
    url = f"{CHANNELS}{created['id']}/"

    patched = client.patch(url, json={"rate_limit_per_hour": 5, "configuration": {"to": "a@b"}})
    assert patched.status_code == 200
    assert patched.headers["ETag"] == '"2"'
    assert content(patched.json()) == {
        "version": 2,
        "is_active": True,
        "name": name,
        "channel_type": "email",
        "configuration": {"to": "a@b"},
        "rate_limit_per_hour": 5,
        "is_enabled": True,
    }

    put = client.put(url, json={"name": name, "channel_type": "webhook", "is_enabled": False})
    assert put.status_code == 200
    assert put.headers["ETag"] == '"3"'
    assert put.json()["version"] == 3
    assert put.json()["channel_type"] == "webhook"
    assert put.json()["is_enabled"] is False
    assert put.json()["created_at"] == created["created_at"]
    assert put.json()["updated_at"] > created["updated_at"]
    assert client.get(url).json() == put.json()


def test_put_requires_every_required_field(client: httpx.Client, unique: Unique) -> None:
    created = create(client, CHANNELS, {"name": unique("hook"), "channel_type": "webhook"})

    response = client.put(f"{CHANNELS}{created['id']}/", json={"name": unique("hook")})

    assert response.status_code == 400
    assert response.json() == {"channel_type": ["This field is required."]}
    assert client.get(f"{CHANNELS}{created['id']}/").json()["version"] == 1


def test_read_only_fields_are_not_written(client: httpx.Client, unique: Unique) -> None:
    created = create(client, CHANNELS, {"name": unique("ro"), "channel_type": "email"})

    response = client.patch(
        f"{CHANNELS}{created['id']}/", json={"version": 40, "id": "x", "is_enabled": False}
    )

    assert response.status_code == 200
    assert response.json()["version"] == 2
    assert response.json()["id"] == created["id"]


def test_unknown_write_field_is_400_naming_it(client: httpx.Client, unique: Unique) -> None:
    body = {"name": unique("typo"), "channel_type": "email", "rate_limit": 5, "colour": "red"}
    response = client.post(CHANNELS, json=body)

    assert response.status_code == 400
    assert response.json() == {"colour": ["Unknown field."], "rate_limit": ["Unknown field."]}

    created = create(client, CHANNELS, {"name": unique("typo"), "channel_type": "email"})
    patched = client.patch(f"{CHANNELS}{created['id']}/", json={"enabled": False})
    assert patched.status_code == 400
    assert patched.json() == {"enabled": ["Unknown field."]}


def test_uniqueness_is_400_on_the_field(client: httpx.Client, unique: Unique) -> None:
    name = unique("dup")
    first = create(client, CHANNELS, {"name": name, "channel_type": "email"})
    other = create(client, CHANNELS, {"name": unique("other"), "channel_type": "email"})

    duplicate = client.post(CHANNELS, json={"name": name, "channel_type": "slack"})
    assert duplicate.status_code == 400
    assert duplicate.json() == {"name": ["channel with this name already exists."]}

    renamed = client.patch(f"{CHANNELS}{other['id']}/", json={"name": name})
    assert renamed.status_code == 400
    assert renamed.json() == {"name": ["channel with this name already exists."]}

    same = client.patch(f"{CHANNELS}{first['id']}/", json={"name": name})
    assert same.status_code == 200


def test_field_validation_errors(client: httpx.Client, unique: Unique) -> None:
    cases = [
        (SOURCES, {"name": unique("s"), "source_type": "kafka"},
         {"source_type": ['"kafka" is not a valid choice.']}),
        (SOURCES, {"name": unique("s"), "source_type": "otlp", "sync_frequency": 9},
         {"sync_frequency": ["Ensure this value is greater than or equal to 10."]}),
        (APPLICATIONS, {"name": unique("a"), "port": 65536},
         {"port": ["Ensure this value is less than or equal to 65535."]}),
        (APPLICATIONS, {"name": unique("a"), "port": 0},
         {"port": ["Ensure this value is greater than or equal to 1."]}),
        (CHANNELS, {"name": unique("c"), "channel_type": "email", "rate_limit_per_hour": 0},
         {"rate_limit_per_hour": ["Ensure this value is greater than or equal to 1."]}),
        (TEMPLATES, {"name": unique("t"), "widgets": {"a": 1}},
         {"widgets": ["Must be a JSON list."]}),
        (CHANNELS, {"channel_type": "email"}, {"name": ["This field is required."]}),
    ]  # fmt: skip
    for path, body, errors in cases:
        response = client.post(path, json=body)

        assert response.status_code == 400, body
        assert response.json() == errors


def test_body_must_be_an_object(client: httpx.Client) -> None:
    response = client.post(CHANNELS, json=["name"])

    assert response.status_code == 400
    assert response.json() == {
        "non_field_errors": ["Invalid data. Expected a dictionary, but got list."]
    }


def test_foreign_keys_are_written_and_read_as_ids(
    client: httpx.Client, unique: Unique, content: Content
) -> None:
    application = create(client, APPLICATIONS, {"name": unique("api"), "port": 8080})
    point = {
        "application": application["id"],
        "metric_name": "http.latency",
        "value": 12.5,
        "unit": "ms",
        "tags": {"route": "/x"},
        "timestamp": "2026-01-02T03:04:05Z",
    }

    created = create(client, METRICS, point)

    assert content(created) == {
        **point,
        "version": 1,
        "is_active": True,
        "category": "",
    }
    unknown = {**point, "application": "8a3bde0e-3f2e-4f25-9a36-3a0f1c0b2d11"}
    response = client.post(METRICS, json=unknown)
    assert response.status_code == 400
    assert response.json() == {
        "application": [
            'Invalid pk "8a3bde0e-3f2e-4f25-9a36-3a0f1c0b2d11" - object does not exist.'
        ]
    }


def test_application_defaults(client: httpx.Client, unique: Unique, content: Content) -> None:
    name = unique("svc")
    created = create(client, APPLICATIONS, {"name": name})

    assert content(created) == {
        "version": 1,
        "is_active": True,
        "name": name,
        "app_version": "",
        "environment": "development",
        "host": "",
        "port": None,
        "team": "",
        "tier": "medium",
        "last_heartbeat": None,
    }


def test_many_to_many_channels_round_trip(client: httpx.Client, unique: Unique) -> None:
    first = create(client, CHANNELS, {"name": unique("m2m"), "channel_type": "email"})
    second = create(client, CHANNELS, {"name": unique("m2m"), "channel_type": "slack"})
    rule = {"name": "cpu high", "metric_name": "cpu", "operator": "gt", "threshold": 0.9}

    empty = create(client, RULES, rule)
    assert empty["channels"] == []
    assert empty["evaluation_window"] == 300
    assert empty["severity"] == "warning"

    both = client.patch(f"{RULES}{empty['id']}/", json={"channels": [first["id"], second["id"]]})
    assert both.status_code == 200
    assert sorted(both.json()["channels"]) == sorted([first["id"], second["id"]])
    assert both.json()["version"] == 2

    cleared = client.patch(f"{RULES}{empty['id']}/", json={"channels": []})
    assert cleared.json()["channels"] == []
    assert cleared.json()["version"] == 3


def test_template_and_dashboard(client: httpx.Client, unique: Unique, content: Content) -> None:
    template = create(
        client,
        TEMPLATES,
        {"name": unique("tpl"), "widgets": [{"kind": "graph"}], "tags": ["ops"], "is_public": True},
    )
    name = unique("board")

    dashboard = create(client, DASHBOARDS, {"name": name, "template": template["id"]})

    assert content(dashboard) == {
        "version": 1,
        "is_active": True,
        "name": name,
        "template": template["id"],
        "configuration": {},
        "owner": "",
        "is_shared": False,
    }
    assert template["widgets"] == [{"kind": "graph"}]
    assert template["layout"] == {}


def test_configuration_value_takes_any_json(client: httpx.Client, unique: Unique) -> None:
    for value in ({"a": [1, 2]}, [1, "x"], "text", 3.5, None, True):
        created = create(client, CONFIGURATIONS, {"key": unique("k"), "value": value})

        assert client.get(f"{CONFIGURATIONS}{created['id']}/").json()["value"] == value
