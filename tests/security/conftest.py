"""Servers and clients for the security tests.

`strict` is a second middleware with the optional settings on: JWT bearer tokens (HS256),
`/metrics` without a key, a failure limit of 5 a minute, a telemetry limit of 20 points a
minute, and keys rechecked every 0.5 s. Limits are kept per client address, so a test that
spends failures sends them from an address of its own on the loopback network (all of
127.0.0.0/8 reaches the server on 127.0.0.1).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import httpx
import pytest

from tests.api_keys import bearer, create_key, unique_name
from tests.backend_server import BackendServer
from tests.middleware_server import MiddlewareServer

JWT_SECRET = "jwt-test-secret-0123456789abcdefghijklmnop"
ISSUER = "https://id.example.test/"
AUDIENCE = "observer-eye"
FAILURE_LIMIT = 5
TELEMETRY_LIMIT = 20

_addresses = itertools.count(2)


def source_address() -> str:
    """A loopback address no other test in this run sends from."""
    number = next(_addresses)
    return f"127.0.{number // 250}.{number % 250 + 2}"


def client(
    server: MiddlewareServer, headers: dict[str, str] | None = None, address: str | None = None
) -> httpx.Client:
    """A client of `server` sending from `address`, by default one of its own."""
    transport = httpx.HTTPTransport(local_address=address or source_address())
    return httpx.Client(base_url=server.url, headers=headers or {}, transport=transport, timeout=30)


@pytest.fixture(scope="session")
def strict(backend: BackendServer, tmp_path_factory: pytest.TempPathFactory):
    env = {
        **backend.env,
        "OBSERVER_AUTH_JWT_SECRET": JWT_SECRET,
        "OBSERVER_AUTH_JWT_ISSUER": ISSUER,
        "OBSERVER_AUTH_JWT_AUDIENCE": AUDIENCE,
        "OBSERVER_AUTH_JWT_LEEWAY_SECONDS": "0",
        "OBSERVER_METRICS_REQUIRE_KEY": "false",
        "OBSERVER_AUTH_FAILURE_RATE_LIMIT": f"{FAILURE_LIMIT}/minute",
        "OBSERVER_TELEMETRY_RATE_LIMIT": f"{TELEMETRY_LIMIT}/minute",
        "OBSERVER_AUTH_KEY_RECHECK_SECONDS": "0.5",
    }
    with MiddlewareServer(tmp_path_factory.mktemp("strict"), env=env) as server:
        yield server


@pytest.fixture(scope="session")
def strict_admin(strict: MiddlewareServer) -> Iterator[httpx.Client]:
    with client(strict, strict.headers) as admin:
        yield admin


@pytest.fixture(scope="session")
def admin(middleware: MiddlewareServer) -> Iterator[httpx.Client]:
    """The session server's admin, for fixtures wider than one test."""
    with httpx.Client(base_url=middleware.url, headers=middleware.headers, timeout=30) as client:
        yield client


@pytest.fixture
def key_for(admin: httpx.Client):
    """`key_for(*scopes)`: headers with a new key of the session server holding those scopes."""

    def make(*scopes: str) -> dict[str, str]:
        return bearer(create_key(admin, unique_name("key"), *scopes))

    return make
