"""The one shared httpx client to the Django backend, guarded by retries and a breaker.

Every call goes through `BackendClient.request`: the breaker is asked before
each attempt, safe calls are retried with jittered exponential backoff
within one time budget, and anything but a 2xx leaves as a `BackendError`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from service.request_context import current_request_id
from service.settings import Settings

from . import error_handler
from .circuit_breaker import CircuitBreaker
from .exceptions import BackendTimeout, BackendUnavailable, BreakerOpen

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"backend answered {response.status_code}")
        self.response = response


class BackendClient:
    def __init__(
        self,
        settings: Settings,
        *,
        base_url: str,
        token: str,
        transport: httpx.AsyncBaseTransport | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._settings = settings
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            headers={"Authorization": f"Token {token}", "Accept": "application/json"},
            timeout=httpx.Timeout(
                connect=settings.backend_connect_timeout,
                read=settings.backend_read_timeout,
                write=settings.backend_write_timeout,
                pool=settings.backend_pool_timeout,
            ),
            limits=httpx.Limits(
                max_connections=settings.backend_max_connections,
                max_keepalive_connections=settings.backend_max_connections,
            ),
        )
        self.breaker = breaker or CircuitBreaker(
            "django",
            window_size=settings.breaker_window_size,
            minimum_calls=settings.breaker_minimum_calls,
            failure_rate=settings.breaker_failure_rate,
            open_seconds=settings.breaker_open_seconds,
            half_open_calls=settings.breaker_half_open_calls,
        )
        self.retries = 0

    async def close(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """Send one call; answers with 2xx (or a status in `ok_statuses`) or raises BackendError."""
        method = method.upper()
        call_headers = self._headers(headers)
        retryable = (
            method in SAFE_METHODS
            or "If-Match" in call_headers
            or ("Idempotency-Key" in call_headers)
        )
        budget = self._settings.backend_call_budget
        try:
            async with asyncio.timeout(budget):
                response = await self._send_with_retries(
                    method, path, params, json, call_headers, retryable
                )
        except TimeoutError as exc:
            raise BackendTimeout(f"The backend call exceeded its {budget:g} s budget.") from exc

        if response.is_success or response.status_code in ok_statuses:
            return response
        raise error_handler.from_response(response)

    async def _send_with_retries(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        json: Any,
        headers: dict[str, str],
        retryable: bool,
    ) -> httpx.Response:
        attempts = self._settings.backend_retry_attempts if retryable else 1
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts)
            | stop_after_delay(self._settings.backend_call_budget),
            wait=wait_random_exponential(
                multiplier=0.05, max=self._settings.backend_retry_max_wait
            ),
            retry=retry_if_exception(_is_retryable),
            before_sleep=self._count_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._send_once(method, path, params, json, headers)
        except _RetryableStatus as exhausted:
            return exhausted.response
        raise AssertionError("tenacity ended without a result")  # pragma: no cover

    async def _send_once(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        json: Any,
        headers: dict[str, str],
    ) -> httpx.Response:
        if not self.breaker.try_acquire():
            wait = self.breaker.seconds_until_half_open()
            raise BreakerOpen("The backend's circuit breaker is open.", wait)

        started = time.perf_counter()
        try:
            response = await self._http.request(
                method, path, params=params, json=json, headers=headers
            )
        except httpx.TransportError as exc:
            self.breaker.record(success=False)
            logger.warning("backend %s %s failed: %s", method, path, type(exc).__name__)
            raise error_handler.from_transport_error(exc) from exc
        except BaseException:
            self.breaker.record(success=False)
            raise

        self.breaker.record(success=response.status_code < 500)
        logger.debug(
            "backend %s %s -> %d in %.1f ms",
            method,
            path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        if response.status_code in RETRYABLE_STATUSES:
            raise _RetryableStatus(response)
        return response

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        request_id = current_request_id()
        if request_id:
            headers["X-Request-ID"] = request_id
        return headers

    def _count_retry(self, state: RetryCallState) -> None:
        self.retries += 1
        logger.info("retrying backend call, attempt %d", state.attempt_number + 1)


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, _RetryableStatus):
        return True
    # An open breaker already says the backend is down: retrying it only adds delay.
    return isinstance(exc, BackendUnavailable | BackendTimeout) and not isinstance(exc, BreakerOpen)
