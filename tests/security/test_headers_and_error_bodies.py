"""Security headers on every answer; no stack traces, host names or secrets where callers or
logs would show them (issue #7)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from service.edge import EdgeMiddleware
from service.metrics import ServiceMetrics
from service.problems import Problem, install_problem_handlers
from tests.loopback import free_port
from tests.middleware_server import MiddlewareServer

SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def security_headers(response: httpx.Response) -> dict[str, str | None]:
    names = (*SECURITY, "cache-control")
    return {name: response.headers.get(name) for name in names}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/health/live", None, 200),
        ("GET", "/api/core/configurations/", None, 200),
        ("POST", "/crud", {"operation": "list", "entity_type": "nope.nope"}, 404),
        ("POST", "/crud", {"operation": "explode"}, 422),
        ("GET", "/no/such/route", None, 404),
        ("DELETE", "/crud", None, 405),
    ],
)
def test_every_answer_carries_the_security_headers_and_no_store(api, method, path, body, status):
    response = api.request(method, path, json=body)

    assert response.status_code == status
    assert security_headers(response) == {**SECURITY, "cache-control": "no-store"}


def test_refusals_before_any_route_carry_them_too(middleware) -> None:
    unauthenticated = httpx.get(f"{middleware.url}/crud/entities", timeout=30)
    too_large = httpx.post(
        f"{middleware.url}/crud",
        content=b" " * (1024 * 1024 + 1),
        headers={**middleware.headers, "Content-Type": "application/json"},
        timeout=30,
    )

    assert (unauthenticated.status_code, too_large.status_code) == (401, 413)
    for response in (unauthenticated, too_large):
        assert security_headers(response) == {**SECURITY, "cache-control": "no-store"}


@pytest.mark.parametrize("path", ["/docs", "/openapi.json", "/redoc"])
def test_the_docs_carry_no_data_and_may_be_cached(api, path) -> None:
    response = api.get(path)

    assert response.status_code == 200
    assert security_headers(response) == {**SECURITY, "cache-control": None}


async def test_an_unexpected_error_is_a_bare_500_with_the_headers() -> None:
    # A route that fails on purpose, in-process: no real route of the service fails on demand.
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(EdgeMiddleware, metrics=ServiceMetrics())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail at db.internal.example:5432")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom")

    assert response.status_code == 500
    assert response.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "The service failed to handle this request.",
        "instance": "/boom",
    }
    assert security_headers(response) == {**SECURITY, "cache-control": "no-store"}


async def test_a_problem_holding_text_utf_8_cannot_carry_is_still_answered() -> None:
    # In-process: the reader now escapes such text, so no real route produces it any more; this
    # is the renderer's own guard for a place that forgets to.
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/echo")
    async def echo() -> None:
        errors = [{"field": "a\udfffb", "message": "m"}]
        raise Problem(422, "key \ud800: refused", title="Refused", errors=errors)

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/echo")

    assert (response.status_code, response.headers["content-type"]) == (
        422,
        "application/problem+json",
    )
    assert response.json() == {
        "type": "about:blank",
        "title": "Refused",
        "status": 422,
        "detail": "key \ufffd: refused",
        "instance": "/echo",
        "errors": [{"field": "a\ufffdb", "message": "m"}],
    }


@pytest.fixture(scope="module")
def orphan(tmp_path_factory: pytest.TempPathFactory):
    """A middleware whose backend port has nothing listening: every backend call is refused."""
    port = free_port()
    env = {
        "OBSERVER_BACKEND_URL": f"http://127.0.0.1:{port}",
        "OBSERVER_BACKEND_TOKEN": "backend-token-that-must-stay-secret",
        "OBSERVER_BACKEND_RETRY_ATTEMPTS": "1",
    }
    server = MiddlewareServer(tmp_path_factory.mktemp("orphan"), env=env).start()
    yield server, port
    server.stop()


def test_a_dead_backend_is_named_in_the_log_never_in_the_answer(orphan) -> None:
    server, port = orphan
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
        listing = client.get("/api/core/configurations/")
        health = client.get("/django/health")

    assert (listing.status_code, health.status_code) == (503, 503)
    for response in (listing, health):
        assert str(port) not in response.text
        assert "127.0.0.1" not in response.text
        assert "Traceback" not in response.text
    assert health.json()["backend"] == "remote"
    assert f"127.0.0.1:{port}/api/" in server.log()  # the operator still learns which host


def test_keys_and_tokens_never_reach_the_log(orphan) -> None:
    server, _ = orphan
    wrong_key = "oek_wrong_0123456789abcdefghijklmnopqrstuv"
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.get("/crud/entities", headers=server.headers)
        client.get("/crud/entities", headers={"X-API-Key": wrong_key})
        client.get("/crud/entities", headers={"Authorization": f"Bearer {wrong_key}"})

    admin_key = server.headers["Authorization"].removeprefix("Bearer ")
    log = server.log()
    assert '"status": 401' in log  # the refusals were logged...
    for secret in (admin_key, wrong_key, "backend-token-that-must-stay-secret"):
        assert secret not in log  # ...without the credentials
