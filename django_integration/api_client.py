"""The one shared httpx client to the Django backend, guarded by retries and a breaker.

Every call goes through `BackendClient.request`: the breaker is asked before
each attempt, safe calls are retried (see retry_policy.py) within one time
budget, and anything but a 2xx leaves as a `BackendError`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState

from service.request_context import TraceContext, current_bearer, current_request_id, current_trace
from service.settings import Settings

from . import error_handler
from .circuit_breaker import CircuitBreaker
from .exceptions import BackendNotReached, BackendTimeout, BreakerOpen
from .retry_policy import RETRYABLE_STATUSES, CallPolicy, RetryableStatus, retry_mode
from .transport import socket_transport

logger = logging.getLogger(__name__)

# outcome, seconds: called once per attempt, for metrics.
CallObserver = Callable[[str, float], None]


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
        self._service_authorization = f"Token {token}"
        limits = httpx.Limits(
            max_connections=settings.backend_max_connections,
            max_keepalive_connections=settings.backend_max_connections,
        )
        scheme = httpx.URL(self.base_url).scheme
        self._http = _CookielessClient(
            base_url=self.base_url,
            transport=transport
            or socket_transport(settings.backend_http_transport, limits, scheme),
            headers={"Accept": "application/json"},
            timeout=httpx.Timeout(
                connect=settings.backend_connect_timeout,
                read=settings.backend_read_timeout,
                write=settings.backend_write_timeout,
                pool=settings.backend_pool_timeout,
            ),
            trust_env=False,
        )
        self.breaker = breaker or CircuitBreaker(
            "django",
            window_size=settings.breaker_window_size,
            minimum_calls=settings.breaker_minimum_calls,
            failure_rate=settings.breaker_failure_rate,
            open_seconds=settings.breaker_open_seconds,
            half_open_calls=settings.breaker_half_open_calls,
            slow_call_seconds=settings.breaker_slow_call_seconds,
        )
        self.retries = 0
        self.outcomes: Counter[str] = Counter()
        self._observers: list[CallObserver] = []
        self._shutdown = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop calls run on

    def observe_calls(self, observer: CallObserver) -> None:
        self._observers.append(observer)

    def begin_shutdown(self) -> None:
        """End retry sleeps and stop retrying; safe from a signal handler or another thread."""
        if self._loop is None:
            self._shutdown.set()
        else:
            self._loop.call_soon_threadsafe(self._shutdown.set)

    async def close(self) -> None:
        """End retry sleeps at once, then close the connections; safe to call twice."""
        self._shutdown.set()
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
        self._loop = self._loop or asyncio.get_running_loop()
        method = method.upper()
        call_headers, forwarded = self._headers(headers)
        budget = self._settings.backend_call_budget
        policy = CallPolicy(
            mode=retry_mode(method, call_headers),
            attempts=self._settings.backend_retry_attempts,
            deadline=time.monotonic() + budget,
            base_wait=self._settings.backend_retry_base_wait,
            max_wait=self._settings.backend_retry_max_wait,
            shutdown=self._shutdown,
        )
        try:
            async with asyncio.timeout(budget):
                response = await self._send_with_retries(
                    policy, method, path, params, json, call_headers
                )
        except TimeoutError as exc:
            raise BackendTimeout(f"The backend call exceeded its {budget:g} s budget.") from exc

        if response.is_success or response.status_code in ok_statuses:
            return response
        raise error_handler.from_response(response, caller_credentials=forwarded)

    async def probe(self, path: str, budget: float) -> None:
        """One GET for a health check, within `budget` seconds, or raises BackendError.

        Outside the breaker and the retries: a probe reports how the backend is, and must not
        change how calls are treated. A backend slower than the probe's short budget but within
        the calls' own is slow, not failing.
        """
        headers, _ = self._headers(None)
        try:
            async with asyncio.timeout(budget):
                response = await self._http.get(self.base_url + path, headers=headers)
        except TimeoutError as exc:
            raise BackendTimeout(f"The backend did not answer within {budget:g} s.") from exc
        except httpx.TransportError as exc:
            raise error_handler.from_transport_error(exc) from exc
        if not response.is_success:
            raise error_handler.from_response(response)

    async def _send_with_retries(
        self,
        policy: CallPolicy,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        json: Any,
        headers: dict[str, str],
    ) -> httpx.Response:
        # Most calls succeed at once; tenacity's machinery (about 20 us) is only set up once
        # the first attempt has failed, and is then handed that failure to judge as its own.
        try:
            return await self._send_once(method, path, params, json, headers)
        except Exception as failure:
            first_failure: Exception | None = failure
        # Whether an attempt may have reached the backend: then the call as a whole did,
        # even when its last attempt is refused (a write may have landed before the crash).
        reached = not isinstance(first_failure, BackendNotReached)

        retrying = AsyncRetrying(
            stop=policy.should_stop,
            wait=policy.wait,
            retry=policy.should_retry,
            sleep=policy.sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if first_failure is not None:
                        replayed, first_failure = first_failure, None
                        raise replayed
                    try:
                        return await self._send_once(method, path, params, json, headers)
                    except Exception as failure:
                        reached = reached or not isinstance(failure, BackendNotReached)
                        raise
        except RetryableStatus as exhausted:
            return exhausted.response
        except BackendNotReached as last:
            if reached:
                raise error_handler.after_earlier_attempts(last) from last
            raise
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
            self._observe("breaker_open", 0.0)
            wait = self.breaker.seconds_until_half_open()
            raise BreakerOpen("The backend's circuit breaker is open.", wait)

        started = time.perf_counter()
        try:
            # An absolute URL: httpx then parses it once instead of parsing the path and
            # joining it to the base URL, about 15 us of the cache-miss path.
            response = await self._http.request(
                method, self.base_url + path, params=params, json=json, headers=headers
            )
        except httpx.TransportError as exc:
            elapsed = time.perf_counter() - started
            self.breaker.record(success=False, duration=elapsed)
            self._observe(_transport_outcome(exc), elapsed)
            # The host goes to the log only: the caller's problem body never names it.
            logger.warning(
                "backend %s %s%s failed: %s", method, self.base_url, path, type(exc).__name__
            )
            raise error_handler.from_transport_error(exc) from exc
        except BaseException:
            # Cancelled by the call's budget or by shutdown: the backend was too slow.
            elapsed = time.perf_counter() - started
            self.breaker.record(success=False, duration=elapsed)
            self._observe("timeout", elapsed)
            raise

        elapsed = time.perf_counter() - started
        status = response.status_code
        self.breaker.record(success=status < 500, duration=elapsed)
        self._observe(_status_outcome(status), elapsed)
        logger.debug("backend %s %s -> %d in %.1f ms", method, path, status, elapsed * 1000)
        if status in RETRYABLE_STATUSES:
            raise RetryableStatus(response)
        return response

    def _headers(self, extra: dict[str, str] | None) -> tuple[dict[str, str], bool]:
        """The call's headers, and whether they carry the caller's own credentials."""
        headers = dict(extra or {})
        request_id = current_request_id()
        if request_id:
            headers["X-Request-ID"] = request_id
        if "traceparent" not in {name.lower() for name in headers}:
            headers["traceparent"] = (current_trace() or TraceContext.new()).child_traceparent()

        bearer = current_bearer() if self._settings.backend_forward_bearer else None
        headers["Authorization"] = f"Bearer {bearer}" if bearer else self._service_authorization
        return headers, bearer is not None

    def _observe(self, outcome: str, seconds: float) -> None:
        self.outcomes[outcome] += 1
        for observer in self._observers:
            observer(outcome, seconds)

    def _count_retry(self, state: RetryCallState) -> None:
        self.retries += 1
        logger.info(
            "retrying backend call, attempt %d after %.2f s",
            state.attempt_number + 1,
            state.upcoming_sleep,
        )


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing."""

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        return None

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _CookielessClient(httpx.AsyncClient):
    """One client serves every caller, so a cookie set in one caller's answer must never ride
    along on another caller's call; skipping the jar also saves about 25 us a call."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        return None  # httpx's constructor sets an empty jar; there is nothing to keep


_NO_COOKIES = _NoCookies()


def _transport_outcome(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    return "connection_error"


def _status_outcome(status: int) -> str:
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "success"
