"""Which calls are retried, and how long the policy waits: decided without sleeping."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
import pytest
from tenacity import RetryCallState

from django_integration import error_handler
from django_integration.exceptions import BackendFailed, BreakerOpen
from django_integration.retry_policy import (
    CallPolicy,
    RetryableStatus,
    RetryMode,
    retry_after_seconds,
    retry_mode,
)

REQUEST = httpx.Request("POST", "http://127.0.0.1/api/core/configurations/")


def policy(mode: RetryMode, *, attempts: int = 3, budget: float = 10.0) -> CallPolicy:
    return CallPolicy(
        mode=mode,
        attempts=attempts,
        deadline=time.monotonic() + budget,
        base_wait=0.05,
        max_wait=1.0,
        shutdown=asyncio.Event(),
    )


def failed_state(exc: BaseException, attempt: int = 1) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    return state


def transport_failure(exc: httpx.TransportError) -> Exception:
    try:
        raise error_handler.from_transport_error(exc) from exc
    except Exception as translated:  # noqa: BLE001 - we want the chained instance
        return translated


def status(code: int, headers: dict[str, str] | None = None) -> RetryableStatus:
    return RetryableStatus(httpx.Response(code, headers=headers, request=REQUEST))


@pytest.mark.parametrize(
    ("method", "headers", "mode"),
    [
        ("GET", {}, RetryMode.ALWAYS),
        ("HEAD", {}, RetryMode.ALWAYS),
        ("PUT", {}, RetryMode.ALWAYS),
        ("DELETE", {}, RetryMode.ALWAYS),
        ("PATCH", {"If-Match": '"3"'}, RetryMode.ALWAYS),
        ("POST", {"Idempotency-Key": "k1"}, RetryMode.UNSENT_ONLY),
        ("POST", {}, RetryMode.NEVER),
        ("PATCH", {}, RetryMode.NEVER),
    ],
)
def test_retry_mode_by_method_and_headers(method, headers, mode) -> None:
    assert retry_mode(method, headers) == mode


def test_safe_calls_retry_timeouts_and_gateway_statuses() -> None:
    always = policy(RetryMode.ALWAYS)
    read_timeout = transport_failure(httpx.ReadTimeout("slow", request=REQUEST))
    assert always.should_retry(failed_state(read_timeout)) is True
    for code in (429, 502, 503, 504):
        assert always.should_retry(failed_state(status(code))) is True


def test_keyed_post_retries_only_what_never_reached_the_backend() -> None:
    keyed = policy(RetryMode.UNSENT_ONLY)
    refused = transport_failure(httpx.ConnectError("refused", request=REQUEST))
    read_timeout = transport_failure(httpx.ReadTimeout("slow", request=REQUEST))
    dropped = transport_failure(httpx.RemoteProtocolError("closed", request=REQUEST))
    assert keyed.should_retry(failed_state(refused)) is True
    assert keyed.should_retry(failed_state(status(503))) is True
    assert keyed.should_retry(failed_state(status(429))) is True
    assert keyed.should_retry(failed_state(read_timeout)) is False
    assert keyed.should_retry(failed_state(dropped)) is False
    assert keyed.should_retry(failed_state(status(502))) is False


def test_never_retried_failures() -> None:
    refused = transport_failure(httpx.ConnectError("refused", request=REQUEST))
    assert policy(RetryMode.NEVER).should_retry(failed_state(refused)) is False
    always = policy(RetryMode.ALWAYS)
    assert always.should_retry(failed_state(BreakerOpen("open", 3.0))) is False
    assert always.should_retry(failed_state(BackendFailed("500"))) is False


def test_wait_honours_retry_after_seconds() -> None:
    always = policy(RetryMode.ALWAYS)
    assert always.wait(failed_state(status(503, {"Retry-After": "2"}))) == 2.0


def test_wait_without_retry_after_is_full_jitter_under_the_cap() -> None:
    always = policy(RetryMode.ALWAYS)
    waits = [always.wait(failed_state(status(502), attempt=5)) for _ in range(200)]
    assert all(0.0 <= wait <= 1.0 for wait in waits)
    assert len(set(waits)) > 150  # jittered, not a fixed delay


def test_stop_when_attempts_are_used_up() -> None:
    state = failed_state(status(502), attempt=3)
    assert policy(RetryMode.ALWAYS, attempts=3).should_stop(state) is True
    assert policy(RetryMode.ALWAYS, attempts=4).should_stop(state) is False


def test_stop_when_the_wait_would_outlast_the_budget() -> None:
    state = failed_state(status(503, {"Retry-After": "30"}))
    state.upcoming_sleep = 30.0
    assert policy(RetryMode.ALWAYS, budget=5.0).should_stop(state) is True


def test_stop_once_shutdown_began() -> None:
    stopping = policy(RetryMode.ALWAYS)
    stopping.shutdown.set()
    assert stopping.should_stop(failed_state(status(502))) is True


async def test_sleep_ends_at_once_on_shutdown() -> None:
    stopping = policy(RetryMode.ALWAYS)
    asyncio.get_running_loop().call_later(0.05, stopping.shutdown.set)
    started = time.monotonic()
    with pytest.raises(Exception, match="shutting down"):
        await stopping.sleep(30.0)
    assert time.monotonic() - started < 5.0


def test_retry_after_as_an_http_date() -> None:
    answer = httpx.Response(
        503, headers={"Retry-After": "Fri, 04 Dec 2026 10:00:07 GMT"}, request=REQUEST
    )
    now = datetime(2026, 12, 4, 10, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(answer, now=now) == 7.0


@pytest.mark.parametrize(("value", "seconds"), [("", None), ("soon", None), ("0", 0.0)])
def test_retry_after_missing_or_malformed(value, seconds) -> None:
    answer = httpx.Response(503, headers={"Retry-After": value}, request=REQUEST)
    assert retry_after_seconds(answer) == seconds
