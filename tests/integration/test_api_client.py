"""The backend client against a real loopback server: retries, breaker, headers, shutdown."""

from __future__ import annotations

import asyncio
import time

import pytest

from django_integration.api_client import BackendClient
from django_integration.exceptions import (
    BackendFailed,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    BreakerOpen,
)
from service.request_context import TraceContext, caller_bearer_var, request_id_var, trace_var
from service.settings import Settings
from tests.integration.scripted_backend import Answer, ScriptedBackend
from tests.middleware_server import free_port

TOKEN = "service-token"


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "backend_retry_attempts": 3,
        "backend_retry_base_wait": 0.01,
        "backend_retry_max_wait": 0.05,
        "backend_read_timeout": 1.0,
        "backend_call_budget": 5.0,
        "breaker_window_size": 4,
        "breaker_minimum_calls": 4,
        "breaker_open_seconds": 30.0,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def backend():
    with ScriptedBackend() as server:
        yield server


async def client_for(url: str, **overrides: object) -> BackendClient:
    return BackendClient(settings(**overrides), base_url=url, token=TOKEN)


async def test_get_is_retried_on_503_and_succeeds(backend: ScriptedBackend) -> None:
    backend.script(Answer(503), Answer(502), Answer(200, {"results": [1]}))
    client = await client_for(backend.url)
    try:
        response = await client.request("GET", "/api/core/configurations/")
    finally:
        await client.close()
    assert response.json() == {"results": [1]}
    assert len(backend.received) == 3
    assert client.retries == 2
    assert dict(client.outcomes) == {"server_error": 2, "success": 1}


async def test_retry_after_is_honoured(backend: ScriptedBackend) -> None:
    backend.script(Answer(429, headers={"Retry-After": "1"}), Answer(200))
    client = await client_for(backend.url)
    started = time.monotonic()
    try:
        await client.request("GET", "/api/core/configurations/")
    finally:
        await client.close()
    assert len(backend.received) == 2
    assert time.monotonic() - started >= 1.0  # never earlier than the backend asked


async def test_retry_after_beyond_the_budget_answers_at_once(backend: ScriptedBackend) -> None:
    backend.script(Answer(503, headers={"Retry-After": "60"}))
    client = await client_for(backend.url)
    try:
        with pytest.raises(BackendFailed) as raised:
            await client.request("GET", "/api/core/configurations/")
    finally:
        await client.close()
    assert raised.value.status == 502
    assert len(backend.received) == 1


async def test_post_without_key_is_never_retried(backend: ScriptedBackend) -> None:
    backend.script(Answer(503), Answer(201, {"id": "x"}))
    client = await client_for(backend.url)
    try:
        with pytest.raises(BackendFailed):
            await client.request("POST", "/api/core/configurations/", json={"key": "a"})
    finally:
        await client.close()
    assert len(backend.received) == 1


async def test_keyed_post_is_retried_on_503(backend: ScriptedBackend) -> None:
    backend.script(Answer(503), Answer(201, {"id": "x"}))
    client = await client_for(backend.url)
    try:
        response = await client.request(
            "POST", "/api/core/configurations/", json={"key": "a"},
            headers={"Idempotency-Key": "key-1"},
        )  # fmt: skip
    finally:
        await client.close()
    assert response.status_code == 201
    assert [r.headers["idempotency-key"] for r in backend.received] == ["key-1", "key-1"]


async def test_keyed_post_is_not_retried_after_a_read_timeout(backend: ScriptedBackend) -> None:
    backend.script(Answer(201, delay=0.8), Answer(201))
    client = await client_for(backend.url, backend_read_timeout=0.3)
    try:
        with pytest.raises(BackendTimeout):
            await client.request(
                "POST", "/api/core/configurations/", json={},
                headers={"Idempotency-Key": "key-2"},
            )  # fmt: skip
    finally:
        await client.close()
    assert len(backend.received) == 1  # it may have been processed: never sent twice


async def test_read_timeout_is_504_within_the_read_timeout(backend: ScriptedBackend) -> None:
    backend.script(*[Answer(200, delay=0.8)] * 3)
    client = await client_for(backend.url, backend_read_timeout=0.3, backend_retry_attempts=1)
    started = time.monotonic()
    try:
        with pytest.raises(BackendTimeout) as raised:
            await client.request("GET", "/api/core/configurations/")
    finally:
        await client.close()
    assert raised.value.status == 504
    assert time.monotonic() - started < 1.5


async def test_budget_bounds_all_attempts_together(backend: ScriptedBackend) -> None:
    backend.script(*[Answer(200, delay=0.8)] * 5)
    client = await client_for(
        backend.url, backend_read_timeout=5.0, backend_call_budget=0.5, backend_retry_attempts=5
    )
    started = time.monotonic()
    try:
        with pytest.raises(BackendTimeout) as raised:
            await client.request("GET", "/api/core/configurations/")
    finally:
        await client.close()
    assert raised.value.detail == "The backend call exceeded its 0.5 s budget."
    assert time.monotonic() - started < 1.5


async def test_connection_refused_opens_the_breaker_then_no_connection_is_tried() -> None:
    client = await client_for(f"http://127.0.0.1:{free_port()}", backend_retry_attempts=1)
    try:
        for _ in range(4):
            with pytest.raises(BackendUnavailable) as refused:
                await client.request("GET", "/api/health/")
            assert refused.value.status == 503
        assert client.breaker.state == "open"
        with pytest.raises(BreakerOpen) as fast:
            await client.request("GET", "/api/health/")
    finally:
        await client.close()
    assert fast.value.headers["Retry-After"] == "30"
    assert client.outcomes["connection_error"] == 4
    assert client.outcomes["breaker_open"] == 1


async def test_4xx_never_count_against_the_breaker(backend: ScriptedBackend) -> None:
    backend.script(*[Answer(404, {"detail": "Not found."})] * 6)
    client = await client_for(backend.url)
    try:
        for _ in range(6):
            with pytest.raises(BackendRejected):
                await client.request("GET", "/api/core/configurations/nope/")
    finally:
        await client.close()
    assert client.breaker.state == "closed"


async def test_slow_calls_open_the_breaker(backend: ScriptedBackend) -> None:
    backend.script(*[Answer(200, delay=0.15)] * 4)
    client = await client_for(backend.url, breaker_slow_call_seconds=0.05)
    try:
        for _ in range(4):
            await client.request("GET", "/api/core/configurations/")
    finally:
        await client.close()
    assert client.breaker.state == "open"
    assert client.breaker.slow_calls == 4


async def test_service_token_request_id_and_a_new_trace_are_sent(backend: ScriptedBackend) -> None:
    client = await client_for(backend.url)
    request_token = request_id_var.set("req-42")
    try:
        await client.request("GET", "/api/health/")
    finally:
        request_id_var.reset(request_token)
        await client.close()
    sent = backend.received[0].headers
    assert sent["authorization"] == f"Token {TOKEN}"
    assert sent["x-request-id"] == "req-42"
    version, trace_id, span_id, flags = sent["traceparent"].split("-")
    assert (version, len(trace_id), len(span_id), flags) == ("00", 32, 16, "01")


async def test_a_cookie_the_backend_sets_is_never_sent_back(backend: ScriptedBackend) -> None:
    # The one client serves every caller: a cookie in one caller's answer must not ride
    # along on the next caller's call.
    backend.script(Answer(200, {}, headers={"Set-Cookie": "sessionid=caller-a; Path=/"}))
    client = await client_for(backend.url)
    try:
        await client.request("GET", "/api/health/")
        await client.request("GET", "/api/health/")
    finally:
        await client.close()
    assert [("cookie" in call.headers) for call in backend.received] == [False, False]


async def test_the_callers_trace_is_continued(backend: ScriptedBackend) -> None:
    client = await client_for(backend.url)
    trace_token = trace_var.set(TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00"))
    try:
        await client.request("GET", "/api/health/")
    finally:
        trace_var.reset(trace_token)
        await client.close()
    _, trace_id, span_id, flags = backend.received[0].headers["traceparent"].split("-")
    assert (trace_id, flags) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00")
    assert span_id != "0" * 16


async def test_bearer_is_forwarded_only_when_configured(backend: ScriptedBackend) -> None:
    forwarding = await client_for(backend.url, backend_forward_bearer=True)
    plain = await client_for(backend.url)
    bearer_token = caller_bearer_var.set("caller-jwt")
    try:
        await forwarding.request("GET", "/api/health/")
        await plain.request("GET", "/api/health/")
    finally:
        caller_bearer_var.reset(bearer_token)
        await forwarding.close()
        await plain.close()
    sent = [received.headers["authorization"] for received in backend.received]
    assert sent == ["Bearer caller-jwt", f"Token {TOKEN}"]


async def test_forwarded_bearer_refused_is_the_callers_401(backend: ScriptedBackend) -> None:
    backend.script(Answer(401, {"detail": "Token expired."}))
    client = await client_for(backend.url, backend_forward_bearer=True)
    bearer_token = caller_bearer_var.set("stale-jwt")
    try:
        with pytest.raises(BackendRejected) as raised:
            await client.request("GET", "/api/health/")
    finally:
        caller_bearer_var.reset(bearer_token)
        await client.close()
    assert (raised.value.status, raised.value.detail) == (401, "Token expired.")


async def test_shutdown_ends_a_retry_sleep_at_once(backend: ScriptedBackend) -> None:
    backend.script(Answer(503, headers={"Retry-After": "20"}), Answer(200))
    client = await client_for(backend.url, backend_call_budget=30.0)
    call = asyncio.create_task(client.request("GET", "/api/core/configurations/"))
    while not backend.received:
        await asyncio.sleep(0.01)
    started = time.monotonic()
    client.begin_shutdown()
    with pytest.raises(BackendUnavailable) as raised:
        await call
    await client.close()
    assert raised.value.detail == "The middleware is shutting down."
    assert time.monotonic() - started < 2.0
    assert len(backend.received) == 1
