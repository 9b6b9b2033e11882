"""The middleware's own database fails under it: a throwaway PostgreSQL of the test's own,
stopped and started again under `python main.py`."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from tests.integration.throwaway_postgres import ThrowawayPostgres, postgres_bin
from tests.middleware_server import MiddlewareServer


@pytest.mark.skipif(
    postgres_bin() is None and not os.environ.get("CI"),
    reason="needs PostgreSQL's initdb (apt-get install postgresql); CI requires it",
)
def test_database_restart_is_survived_without_restarting_the_service(tmp_path) -> None:
    with ThrowawayPostgres() as database:
        env = {"OBSERVER_BACKEND_URL": "", "OBSERVER_DATABASE_URL": database.url}
        with (
            MiddlewareServer(tmp_path, env=env) as server,
            httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as api,
        ):
            assert api.get("/health/ready").status_code == 200

            database.stop()
            down = api.get("/health/ready")
            assert down.status_code == 503
            assert down.json()["checks"]["database"]["ok"] is False
            assert api.get("/health/live").status_code == 200
            assert _answers_while_the_database_is_down(api) == dict.fromkeys(
                DATABASE_ROUTES,
                (503, "5", "The service's database cannot be reached; retry later."),
            )

            database.start()
            database.wait_until_accepting()
            ready = _until_ready(api)
            assert ready.json()["checks"]["database"]["ok"] is True
            assert api.get("/audit").status_code == 200  # the pool serves real queries again


RULE = {"name": "hot", "selector": {"name": "cpu"}, "operator": "gt", "value": 90}
# Routes that read or write the middleware's own database; each once with a body.
DATABASE_ROUTES = {
    "GET /audit": None,
    "GET /audit/verify": None,
    "GET /audit/notification/channels/x": None,
    "GET /telemetry/alerts": None,
    "POST /telemetry/rules": RULE,
    "GET /auth/keys": None,
}


def _answers_while_the_database_is_down(api: httpx.Client) -> dict[str, tuple[int, str, str]]:
    answers = {}
    for route, body in DATABASE_ROUTES.items():
        method, path = route.split()
        answer = api.request(method, path, json=body)
        assert answer.headers["content-type"] == "application/problem+json", route
        answers[route] = (
            answer.status_code,
            answer.headers.get("retry-after"),
            answer.json()["detail"],
        )
    return answers


def _until_ready(api: httpx.Client, timeout: float = 15) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = api.get("/health/ready")
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)
