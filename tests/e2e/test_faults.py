"""The backend fails: the middleware answers quickly and honestly, and keeps running."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.backend_server import BackendServer
from tests.middleware_server import MiddlewareServer, free_port

LIST_CHANNELS = {"operation": "list", "entity_type": "notification.channels"}


@pytest.fixture
def dead_backend_middleware(tmp_path):
    env = {
        "OBSERVER_BACKEND_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "OBSERVER_BACKEND_TOKEN": "unused",
        "OBSERVER_BACKEND_RETRY_ATTEMPTS": "1",
        "OBSERVER_BREAKER_WINDOW_SIZE": "4",
        "OBSERVER_BREAKER_MINIMUM_CALLS": "4",
        "OBSERVER_BREAKER_OPEN_SECONDS": "30",
    }
    with MiddlewareServer(tmp_path, env=env) as server:
        yield server


def test_unreachable_backend_is_503_then_breaker_opens(dead_backend_middleware) -> None:
    with httpx.Client(base_url=dead_backend_middleware.url, timeout=10) as api:
        assert api.get("/health/live").status_code == 200

        refused = api.post("/crud", json=LIST_CHANNELS)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert refused.headers["content-type"] == "application/problem+json"

        for _ in range(4):
            api.post("/crud", json=LIST_CHANNELS)
        health = api.get("/django/health")
        assert health.status_code == 503
        assert health.json()["breaker"]["state"] == "open"

        fast = api.post("/crud", json=LIST_CHANNELS)
        assert fast.status_code == 503
        assert fast.json()["detail"] == "The backend's circuit breaker is open."
        assert 1 <= int(fast.headers["Retry-After"]) <= 30


def test_paused_backend_times_out_with_504(tmp_path) -> None:
    with BackendServer() as backend:
        env = {
            "OBSERVER_BACKEND_URL": backend.url,
            "OBSERVER_BACKEND_TOKEN": backend.token,
            "OBSERVER_BACKEND_READ_TIMEOUT": "1",
            "OBSERVER_BACKEND_RETRY_ATTEMPTS": "1",
        }
        with (
            MiddlewareServer(tmp_path, env=env) as server,
            httpx.Client(base_url=server.url, timeout=10) as api,
        ):
            assert api.post("/crud", json=LIST_CHANNELS).status_code == 200
            backend.pause()
            try:
                started = time.monotonic()
                response = api.post("/crud", json=LIST_CHANNELS)
                elapsed = time.monotonic() - started
            finally:
                backend.resume()
            assert response.status_code == 504
            assert elapsed < 5  # bounded by the 1 s read timeout, not by the pause
            assert api.post("/crud", json=LIST_CHANNELS).status_code == 200
