"""`python main.py` with no backend configured serves CRUD on the embedded backend."""

import httpx

from tests.middleware_server import MiddlewareServer


def test_embedded_backend_round_trip(tmp_path) -> None:
    env = {"OBSERVER_BACKEND_URL": "", "OBSERVER_BACKEND_TOKEN": ""}
    with (
        MiddlewareServer(tmp_path, env=env) as server,
        httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as api,
    ):
        created = api.post(
            "/crud",
            json={
                "operation": "create",
                "entity_type": "notification.channels",
                "data": {"name": "oncall", "channel_type": "pagerduty"},
            },
        )
        assert created.status_code == 201, created.text
        entity_id = created.json()["data"]["id"]

        read = api.post(
            "/crud",
            json={
                "operation": "read",
                "entity_type": "notification.channels",
                "entity_id": entity_id,
            },
        )
        assert (read.status_code, read.json()["data"]["channel_type"]) == (200, "pagerduty")
        assert api.get("/django/health").json()["backend"] == "embedded"
        stale = api.patch(
            f"/api/notification/channels/{entity_id}/",
            json={"name": "on-call"},
            headers={"If-Match": '"7"'},
        )
        assert stale.status_code == 412

    # The middleware's own request line says so; Django adds no warning of its own.
    assert '"logger": "django.request"' not in server.log()

    assert (tmp_path / "backend.sqlite3").exists()
    assert (tmp_path / "observer.db").exists()
