"""CORS from the allow-list only (issue #7): allowed and refused origins, preflights, defaults."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from service.settings import Settings
from tests.backend_server import BackendServer
from tests.middleware_server import MiddlewareServer

DASHBOARD = "https://dash.example.test"
OTHER = "https://evil.example.test"
PREFLIGHT = "access-control-request-method"


@pytest.fixture(scope="module")
def cors_server(backend: BackendServer, tmp_path_factory: pytest.TempPathFactory):
    env = {
        **backend.env,
        "OBSERVER_CORS_ALLOWED_ORIGINS": f'["{DASHBOARD}", "http://127.0.0.1:3000"]',
    }
    with MiddlewareServer(tmp_path_factory.mktemp("cors"), env=env) as server:
        yield server


def preflight(url: str, origin: str, method: str = "PATCH", headers: str = "") -> httpx.Response:
    request_headers = {"Origin": origin, PREFLIGHT: method}
    if headers:
        request_headers["Access-Control-Request-Headers"] = headers
    return httpx.options(f"{url}/api/core/configurations/abc/", headers=request_headers)


def test_an_allowed_origin_may_read_answers_and_their_headers(cors_server) -> None:
    response = httpx.get(
        f"{cors_server.url}/crud/entities", headers={**cors_server.headers, "Origin": DASHBOARD}
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == DASHBOARD
    assert response.headers["access-control-expose-headers"] == (
        "ETag, X-Cache, Warning, Retry-After, Idempotent-Replayed, X-Request-ID, WWW-Authenticate"
    )
    assert "access-control-allow-credentials" not in response.headers
    assert response.headers["vary"] == "Origin"


def test_a_refusal_still_carries_cors_headers_so_the_page_can_read_it(cors_server) -> None:
    response = httpx.get(f"{cors_server.url}/crud/entities", headers={"Origin": DASHBOARD})

    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == DASHBOARD


def test_another_origin_gets_no_cors_headers(cors_server) -> None:
    response = httpx.get(
        f"{cors_server.url}/crud/entities", headers={**cors_server.headers, "Origin": OTHER}
    )

    assert response.status_code == 200  # the browser, not the server, withholds the answer
    cors = {name for name in response.headers if name.startswith("access-control-")}
    assert (cors, response.headers["vary"]) == (set(), "Origin")


def test_a_preflight_from_an_allowed_origin_needs_no_credential(cors_server) -> None:
    asked = "authorization, x-api-key, if-match, idempotency-key, content-type, traceparent"
    response = preflight(cors_server.url, DASHBOARD, headers=asked)

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == DASHBOARD
    assert response.headers["access-control-allow-methods"] == "GET, POST, PUT, PATCH, DELETE"
    assert response.headers["access-control-allow-headers"] == (
        "Accept, Accept-Language, Authorization, Content-Encoding, Content-Language, "
        "Content-Type, Idempotency-Key, If-Match, X-API-Key, X-Request-ID, traceparent, "
        "tracestate"
    )
    assert response.headers["access-control-max-age"] == "600"


@pytest.mark.parametrize(
    ("origin", "method", "headers", "refused"),
    [
        (OTHER, "PATCH", "", ["origin"]),
        (DASHBOARD, "TRACE", "", ["method"]),
        (DASHBOARD, "GET", "x-forwarded-for", ["headers"]),
        ("http://127.0.0.1:3001", "GET", "cookie", ["origin", "headers"]),
    ],
)
def test_a_refused_preflight_is_a_problem_naming_what_was_refused(
    cors_server, origin, method, headers, refused
) -> None:
    response = preflight(cors_server.url, origin, method, headers)

    assert (response.status_code, response.headers["content-type"]) == (
        400,
        "application/problem+json",
    )
    assert response.json() == {
        "type": "about:blank",
        "title": "Cross-origin request refused",
        "status": 400,
        "detail": f"This cross-origin request is not allowed; refused: {', '.join(refused)}.",
        "refused": refused,
    }
    # An allowed origin is still named; the non-2xx status alone makes the browser stop.
    allowed_origin = response.headers.get("access-control-allow-origin")
    assert allowed_origin == (None if "origin" in refused else origin)
    assert response.headers["x-content-type-options"] == "nosniff"


def test_by_default_no_origin_is_allowed(middleware) -> None:
    simple = httpx.get(
        f"{middleware.url}/health/live", headers={**middleware.headers, "Origin": DASHBOARD}
    )
    checked = preflight(middleware.url, DASHBOARD)

    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers
    assert (checked.status_code, checked.json()["refused"]) == (400, ["origin"])


@pytest.mark.parametrize(
    "origin",
    ["*", "https://dash.example.test/", "dash.example.test", "https://a.test/path", "null"],
)
def test_anything_but_a_plain_origin_stops_the_service_at_start_up(origin) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(cors_allowed_origins=[origin])
    assert "CORS origins are scheme://host[:port]" in str(caught.value)


def test_plain_origins_are_accepted() -> None:
    origins = ["https://dash.example.test", "http://127.0.0.1:3000", "http://[::1]:8080"]
    assert Settings(cors_allowed_origins=origins).cors_allowed_origins == origins
