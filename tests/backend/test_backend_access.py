"""Auth, health, the API root, OPTIONS metadata and JSON 404s."""

from __future__ import annotations

import httpx
import pytest

from tests.backend_server import BackendServer

RESOURCES = {
    "core": ["configurations"],
    "analytics": ["data-sources", "reports"],
    "appmetrics": ["applications", "metrics"],
    "notification": ["channels", "alert-rules", "alerts"],
    "template_dashboards": ["templates", "dashboards"],
}


def test_health_needs_no_token(server: BackendServer) -> None:
    response = httpx.get(f"{server.url}/api/health/", trust_env=False)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_missing_token_is_401(server: BackendServer) -> None:
    for path in ("/api/", "/api/notification/channels/"):
        response = httpx.get(f"{server.url}{path}", trust_env=False)

        assert response.status_code == 401
        assert response.json() == {"detail": "Authentication credentials were not provided."}
        assert response.headers["WWW-Authenticate"] == "Token"


def test_wrong_token_is_401(server: BackendServer) -> None:
    headers = {"Authorization": f"Token {server.token}x"}
    response = httpx.get(f"{server.url}/api/core/configurations/", headers=headers, trust_env=False)

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_api_root_lists_every_resource(client: httpx.Client, server: BackendServer) -> None:
    response = client.get("/api/")

    assert response.status_code == 200
    expected = {
        app: {name: f"{server.url}/api/{app}/{name}/" for name in names}
        for app, names in RESOURCES.items()
    }
    assert response.json() == expected
    # The brief says "all 11" but names ten resources; the root lists exactly those ten.
    assert sum(len(names) for names in response.json().values()) == 10


def test_every_listed_resource_answers_an_empty_page(client: httpx.Client) -> None:
    for app, names in RESOURCES.items():
        for name in names:
            response = client.get(f"/api/{app}/{name}/", params={"is_active": "false"})

            assert response.status_code == 200
            assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_options_exposes_fields(client: httpx.Client) -> None:
    response = client.options("/api/notification/channels/")

    assert response.status_code == 200
    fields = response.json()["actions"]["POST"]
    assert set(fields) == {
        "id", "version", "is_active", "created_at", "updated_at", "name", "channel_type",
        "configuration", "rate_limit_per_hour", "is_enabled",
    }  # fmt: skip
    assert fields["id"]["read_only"] is True
    assert fields["version"] == {"type": "integer", "required": False, "read_only": True,
                                 "label": "Version"}  # fmt: skip
    assert fields["name"]["type"] == "string"
    assert fields["name"]["required"] is True
    assert fields["name"]["read_only"] is False
    assert fields["channel_type"]["type"] == "choice"
    assert [choice["value"] for choice in fields["channel_type"]["choices"]] == [
        "email", "slack", "webhook", "pagerduty",
    ]  # fmt: skip
    assert fields["rate_limit_per_hour"]["required"] is False
    assert "name__icontains" in response.json()["filters"]
    assert "rate_limit_per_hour" in response.json()["ordering"]


def test_options_shows_relations_as_fields(client: httpx.Client) -> None:
    fields = client.options("/api/notification/alert-rules/").json()["actions"]["POST"]

    assert fields["channels"]["type"] == "field"
    assert fields["channels"]["required"] is False
    assert fields["operator"]["required"] is True


def test_unknown_route_is_json_404(client: httpx.Client) -> None:
    response = client.get("/api/nowhere/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize(
    ("object_id", "detail"),
    [
        ("8a3bde0e-3f2e-4f25-9a36-3a0f1c0b2d11", "No Configuration matches the given query."),
        ("not-a-uuid", "Not found."),
    ],
)
def test_unknown_id_is_404(client: httpx.Client, object_id: str, detail: str) -> None:
    response = client.get(f"/api/core/configurations/{object_id}/")

    assert response.status_code == 404
    assert response.json() == {"detail": detail}
