"""Whose address a request is from: X-Forwarded-For counts only from the proxies named in
OBSERVER_TRUSTED_PROXIES (none by default), so a local process cannot forge the address the
failure limit and the audit trail go by."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from service.settings import Settings
from tests.api_keys import unique_name
from tests.backend_server import BackendServer
from tests.middleware_server import MiddlewareServer
from tests.security.conftest import client

FORGED = "203.0.113.7"


def _refused_from(server: MiddlewareServer, address: str) -> str:
    """Send a request without a credential and `X-Forwarded-For`; the user agent it went with."""
    agent = unique_name("forwarded")
    headers = {"X-Forwarded-For": FORGED, "User-Agent": agent}
    with client(server, headers, address=address) as caller:
        assert caller.get("/audit").status_code == 401
    return agent


def _audited_address(server: MiddlewareServer, agent: str) -> list[str]:
    trail = httpx.get(
        f"{server.url}/audit",
        params={"operation": "authenticate", "page_size": 1000},
        headers=server.headers,
    ).json()["data"]
    return [entry["client_address"] for entry in trail if entry["user_agent"] == agent]


def test_x_forwarded_for_from_loopback_is_ignored_by_default(middleware) -> None:
    agent = _refused_from(middleware, "127.0.0.1")
    assert _audited_address(middleware, agent) == ["127.0.0.1"]


@pytest.fixture(scope="module")
def behind_proxy(backend: BackendServer, tmp_path_factory: pytest.TempPathFactory):
    env = {
        **backend.env,
        "OBSERVER_TRUSTED_PROXIES": '["192.0.2.0/24", "127.0.0.1"]',
    }
    with MiddlewareServer(tmp_path_factory.mktemp("proxied"), env=env) as server:
        yield server


def test_x_forwarded_for_is_honoured_from_a_trusted_proxy_only(behind_proxy) -> None:
    from_proxy = _refused_from(behind_proxy, "127.0.0.1")
    from_elsewhere = _refused_from(behind_proxy, "127.0.0.9")

    assert _audited_address(behind_proxy, from_proxy) == [FORGED]
    assert _audited_address(behind_proxy, from_elsewhere) == ["127.0.0.9"]


@pytest.mark.parametrize("proxies", [["*"], ["proxy.internal"], ["10.0.0.0/33"]])
def test_trusted_proxies_must_be_addresses_or_networks(proxies) -> None:
    with pytest.raises(ValidationError, match="trusted proxies are IP addresses or networks"):
        Settings(trusted_proxies=proxies)


def test_trusted_proxies_take_addresses_and_networks_of_either_family() -> None:
    proxies = ["127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8"]
    assert Settings(trusted_proxies=proxies).trusted_proxies == proxies
