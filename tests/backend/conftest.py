"""One real backend process per test module, and an authenticated httpx client for it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.backend_server import BackendServer

BOOKKEEPING = ("id", "created_at", "updated_at")


@pytest.fixture(scope="module")
def server() -> Iterator[BackendServer]:
    with BackendServer() as running:
        yield running


@pytest.fixture
def client(server: BackendServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers=server.headers, timeout=30.0, trust_env=False
    ) as authed:
        yield authed


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names that never collide with rows other tests of the module left behind."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:10]}"


def strip_bookkeeping(body: dict[str, Any]) -> dict[str, Any]:
    uuid.UUID(body["id"])
    datetime.fromisoformat(body["created_at"])
    datetime.fromisoformat(body["updated_at"])
    return {key: value for key, value in body.items() if key not in BOOKKEEPING}


@pytest.fixture
def content() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A response body without the server-chosen id and timestamps, after checking them."""
    return strip_bookkeeping
