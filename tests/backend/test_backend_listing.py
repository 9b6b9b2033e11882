"""Filters (every lookup), ordering and paging over a fixed set of rows.

This module has its own server, so the rows seeded here are the only ones it sees.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.backend_server import BackendServer

APPLICATIONS = "/api/appmetrics/applications/"
METRICS = "/api/appmetrics/metrics/"
CHANNELS = "/api/notification/channels/"
RULES = "/api/notification/alert-rules/"

SEED = [
    {"name": "alpha-api", "port": 80, "environment": "production", "tier": "critical",
     "team": "core", "last_heartbeat": "2026-01-01T00:00:00Z"},
    {"name": "beta-web", "port": 443, "environment": "staging", "tier": "high",
     "team": "edge", "last_heartbeat": None},
    {"name": "gamma-API", "port": 8080, "environment": "development", "tier": "low",
     "team": "core", "last_heartbeat": "2026-02-01T00:00:00Z"},
    {"name": "delta-db", "port": 5432, "environment": "production", "tier": "low",
     "team": "data", "last_heartbeat": None},
]  # fmt: skip


@pytest.fixture(scope="module")
def seeded(server: BackendServer) -> dict[str, str]:
    """The seed applications by name -> id; delta-db is soft-deleted."""
    with httpx.Client(base_url=server.url, headers=server.headers, trust_env=False) as client:
        ids = {}
        for body in SEED:
            response = client.post(APPLICATIONS, json=body)
            assert response.status_code == 201
            ids[body["name"]] = response.json()["id"]
        assert client.delete(f"{APPLICATIONS}{ids['delta-db']}/").status_code == 204
        return ids


def names(client: httpx.Client, params: dict[str, Any]) -> list[str]:
    response = client.get(APPLICATIONS, params=params)
    assert response.status_code == 200, response.text
    return [row["name"] for row in response.json()["results"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["alpha-api", "beta-web", "gamma-API"]),
        ({"name": "alpha-api"}, ["alpha-api"]),
        ({"name__ne": "alpha-api"}, ["beta-web", "gamma-API"]),
        ({"port__gt": "443"}, ["gamma-API"]),
        ({"port__gte": "443"}, ["beta-web", "gamma-API"]),
        ({"port__lt": "443"}, ["alpha-api"]),
        ({"port__lte": "443"}, ["alpha-api", "beta-web"]),
        ({"port__in": "80,8080"}, ["alpha-api", "gamma-API"]),
        ({"port__not_in": "80,8080"}, ["beta-web"]),
        ({"name__icontains": "API"}, ["alpha-api", "gamma-API"]),
        ({"name__istartswith": "BETA"}, ["beta-web"]),
        ({"name__iendswith": "-api"}, ["alpha-api", "gamma-API"]),
        ({"name__gt": "beta-web"}, ["gamma-API"]),
        ({"last_heartbeat__isnull": "true"}, ["beta-web"]),
        ({"last_heartbeat__isnull": "false"}, ["alpha-api", "gamma-API"]),
        ({"last_heartbeat__gte": "2026-01-15T00:00:00Z"}, ["gamma-API"]),
        ({"last_heartbeat__lt": "2026-01-15T00:00:00+00:00"}, ["alpha-api"]),
        ({"environment": "staging"}, ["beta-web"]),
        ({"environment__ne": "staging"}, ["alpha-api", "gamma-API"]),
        ({"environment__in": "staging,production"}, ["alpha-api", "beta-web"]),
        ({"team__icontains": "EDG"}, ["beta-web"]),
        ({"team": "core", "port__gt": "100"}, ["gamma-API"]),
        ({"is_active": "true"}, ["alpha-api", "beta-web", "gamma-API"]),
        ({"is_active": "false"}, []),
        ({"include_inactive": "true", "is_active": "false"}, ["delta-db"]),
        ({"include_inactive": "true", "environment": "production"}, ["alpha-api", "delta-db"]),
        ({"version__gte": "2"}, []),
    ],
)
def test_filter_lookup(
    client: httpx.Client, seeded: dict[str, str], params: dict[str, Any], expected: list[str]
) -> None:
    assert names(client, params) == expected


def test_filter_by_id(client: httpx.Client, seeded: dict[str, str]) -> None:
    assert names(client, {"id": seeded["beta-web"]}) == ["beta-web"]
    both = f"{seeded['alpha-api']},{seeded['gamma-API']}"
    assert names(client, {"id__not_in": both}) == ["beta-web"]


def test_foreign_key_filters(client: httpx.Client, seeded: dict[str, str]) -> None:
    for application, value in (("alpha-api", 1.0), ("alpha-api", 2.0), ("beta-web", 3.0)):
        body = {"application": seeded[application], "metric_name": "cpu", "value": value}
        assert client.post(METRICS, json=body).status_code == 201

    def values(params: dict[str, str]) -> list[float]:
        response = client.get(METRICS, params={**params, "ordering": "value"})
        assert response.status_code == 200, response.text
        return [row["value"] for row in response.json()["results"]]

    assert values({"application": seeded["alpha-api"]}) == [1.0, 2.0]
    assert values({"application__ne": seeded["alpha-api"]}) == [3.0]
    assert values({"application__in": f"{seeded['beta-web']},{seeded['gamma-API']}"}) == [3.0]
    assert values({"application": "8a3bde0e-3f2e-4f25-9a36-3a0f1c0b2d11"}) == []
    assert values({"value__gt": "1.5", "metric_name": "cpu"}) == [2.0, 3.0]


def test_many_to_many_filter(client: httpx.Client) -> None:
    paging = client.post(CHANNELS, json={"name": "pager", "channel_type": "pagerduty"}).json()
    mail = client.post(CHANNELS, json={"name": "mail", "channel_type": "email"}).json()
    rule = {"metric_name": "cpu", "operator": "gt", "threshold": 1}
    client.post(RULES, json={**rule, "name": "paged", "channels": [paging["id"], mail["id"]]})
    client.post(RULES, json={**rule, "name": "mailed", "channels": [mail["id"]]})
    client.post(RULES, json={**rule, "name": "silent"})

    def rules(params: dict[str, str]) -> list[str]:
        response = client.get(RULES, params={**params, "ordering": "name"})
        assert response.status_code == 200, response.text
        return [row["name"] for row in response.json()["results"]]

    assert rules({"channels": mail["id"]}) == ["mailed", "paged"]
    assert rules({"channels": paging["id"]}) == ["paged"]
    assert rules({"channels__isnull": "true"}) == ["silent"]
    assert rules({"channels__in": f"{mail['id']},{paging['id']}"}) == ["mailed", "paged"]


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"port": "abc"}, {"port": ["Enter a number."]}),
        ({"port__in": "80,x"}, {"port__in": ["Enter a number."]}),
        ({"environment": "moon"},
         {"environment": ["Select a valid choice. moon is not one of the available choices."]}),
        ({"last_heartbeat__gt": "yesterday"}, {"last_heartbeat__gt": ["Enter a valid date/time."]}),
        ({"is_active": "ture"}, {"is_active": ["Enter true or false."]}),
        ({"last_heartbeat__isnull": "maybe"}, {"last_heartbeat__isnull": ["Enter true or false."]}),
        ({"id": "nope"}, {"id": ["Enter a valid UUID."]}),
    ],
)  # fmt: skip
def test_bad_filter_value_is_400(
    client: httpx.Client, seeded: dict[str, str], params: dict[str, str], errors: dict
) -> None:
    response = client.get(APPLICATIONS, params=params)

    assert response.status_code == 400
    assert response.json() == errors


@pytest.mark.parametrize("param", ["nam", "name__contains", "port__ne_", "tags", "hard", "limit"])
def test_unknown_query_parameter_is_400(
    client: httpx.Client, seeded: dict[str, str], param: str
) -> None:
    response = client.get(APPLICATIONS, params={param: "x"})

    assert response.status_code == 400
    assert response.json() == {param: ["Unknown query parameter."]}


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("-port", ["gamma-API", "beta-web", "alpha-api"]),
        ("port", ["alpha-api", "beta-web", "gamma-API"]),
        ("team,-name", ["gamma-API", "alpha-api", "beta-web"]),
        ("-created_at", ["gamma-API", "beta-web", "alpha-api"]),
        ("tier, name", ["alpha-api", "beta-web", "gamma-API"]),
    ],
)
def test_ordering(
    client: httpx.Client, seeded: dict[str, str], ordering: str, expected: list[str]
) -> None:
    assert names(client, {"ordering": ordering}) == expected


@pytest.mark.parametrize(
    ("ordering", "message"),
    [
        ("colour", "Unknown ordering field(s): colour."),
        ("name,-colour", "Unknown ordering field(s): -colour."),
        (",", "Name at least one field."),
    ],
)
def test_unknown_ordering_is_400(
    client: httpx.Client, seeded: dict[str, str], ordering: str, message: str
) -> None:
    response = client.get(APPLICATIONS, params={"ordering": ordering})

    assert response.status_code == 400
    assert response.json() == {"ordering": [message]}


def test_pages(client: httpx.Client, seeded: dict[str, str], server: BackendServer) -> None:
    first = client.get(APPLICATIONS, params={"page_size": 2}).json()
    assert first["count"] == 3
    assert [row["name"] for row in first["results"]] == ["alpha-api", "beta-web"]
    assert first["next"] == f"{server.url}{APPLICATIONS}?page=2&page_size=2"
    assert first["previous"] is None

    second = client.get(first["next"]).json()
    assert second["count"] == 3
    assert [row["name"] for row in second["results"]] == ["gamma-API"]
    assert second["next"] is None
    assert second["previous"] == f"{server.url}{APPLICATIONS}?page_size=2"


def test_default_and_largest_page_size(client: httpx.Client, seeded: dict[str, str]) -> None:
    for params in ({}, {"page_size": "1000"}, {"page": "1"}):
        response = client.get(APPLICATIONS, params=params)

        assert response.status_code == 200
        assert len(response.json()["results"]) == 3


def test_page_past_the_end_is_404(client: httpx.Client, seeded: dict[str, str]) -> None:
    response = client.get(APPLICATIONS, params={"page": 2})

    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid page."}


@pytest.mark.parametrize("page_size", ["0", "1001", "-1", "ten"])
def test_bad_page_size_is_400(client: httpx.Client, seeded: dict[str, str], page_size: str) -> None:
    response = client.get(APPLICATIONS, params={"page_size": page_size})

    assert response.status_code == 400
    assert response.json() == {"page_size": ["Must be an integer from 1 to 1000."]}
