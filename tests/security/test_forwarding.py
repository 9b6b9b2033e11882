"""With OBSERVER_BACKEND_FORWARD_BEARER a dashboard's JWT reaches the backend; an API key of
this service never does. The backend here records what it receives (a scripted stand-in: the
point is what arrives on its socket, which the reference backend does not expose)."""

from __future__ import annotations

import httpx

from tests.integration.scripted_backend import ScriptedBackend
from tests.middleware_server import MiddlewareServer
from tests.security.conftest import AUDIENCE, ISSUER, JWT_SECRET
from tests.security.test_jwt import token


def test_only_a_jwt_is_forwarded_to_the_backend(tmp_path) -> None:
    jwt_bearer = token(sub="erin", scope="crud:read")
    with ScriptedBackend() as backend:
        env = {
            "OBSERVER_BACKEND_URL": backend.url,
            "OBSERVER_BACKEND_TOKEN": "service-token",
            "OBSERVER_BACKEND_FORWARD_BEARER": "true",
            "OBSERVER_DISCOVERY_INTERVAL_SECONDS": "600",
            "OBSERVER_AUTH_JWT_SECRET": JWT_SECRET,
            "OBSERVER_AUTH_JWT_ISSUER": ISSUER,
            "OBSERVER_AUTH_JWT_AUDIENCE": AUDIENCE,
        }
        with MiddlewareServer(tmp_path, env=env) as server:
            with_key = httpx.get(f"{server.url}/django/health", headers=server.headers)
            with_jwt = httpx.get(
                f"{server.url}/django/health", headers={"Authorization": f"Bearer {jwt_bearer}"}
            )
        sent = [
            call.headers["authorization"]
            for call in backend.received
            if call.path == "/api/health/"
        ]

    assert (with_key.status_code, with_jwt.status_code) == (200, 200)
    assert sent == ["Token service-token", f"Bearer {jwt_bearer}"]
