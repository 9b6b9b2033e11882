"""Real servers for the end-to-end tests: the reference backend and the middleware.

Both run as their own processes on free 127.0.0.1 ports, started the way an
operator starts them (`python -m backend`, `python main.py`).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.backend_server import BackendServer
from tests.middleware_server import MiddlewareServer


@pytest.fixture(scope="session")
def backend() -> Iterator[BackendServer]:
    with BackendServer() as server:
        yield server


@pytest.fixture(scope="session")
def middleware(backend: BackendServer, tmp_path_factory: pytest.TempPathFactory):
    env = {
        **backend.env,
        # Short, so that applications and rules created by a test reach the pipeline soon.
        "OBSERVER_TELEMETRY_SERVICE_FACTS_TTL_SECONDS": "0.2",
    }
    with MiddlewareServer(tmp_path_factory.mktemp("middleware"), env=env) as server:
        yield server


@pytest.fixture
def api(middleware: MiddlewareServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=middleware.url, headers=middleware.headers, timeout=30) as client:
        yield client
