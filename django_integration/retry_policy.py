"""Which backend calls may be retried, and how long to wait between attempts.

The policy is data plus three tenacity hooks: `retry` (is this failure worth another
attempt?), `wait` (full-jitter exponential backoff, or the backend's `Retry-After` when it
sent one) and `stop` (attempts used up, budget spent, or the service shutting down).
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from tenacity import RetryCallState, wait_random_exponential

from .exceptions import BackendNotReached, BackendTimeout, BackendUnavailable, BreakerOpen

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# Statuses that promise the request was not acted on (RFC 9110 15.6.4, RFC 6585 section 4).
NOT_PROCESSED_STATUSES = frozenset({429, 503})


class RetryableStatus(Exception):
    """A retryable answer, raised inside the retry loop so tenacity sees it."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"backend answered {response.status_code}")
        self.response = response


class RetryMode(enum.StrEnum):
    NEVER = "never"
    # A POST with an Idempotency-Key: the reference backend does not deduplicate keys,
    # so only a call that provably never reached it is repeated.
    UNSENT_ONLY = "unsent_only"
    ALWAYS = "always"


def retry_mode(method: str, headers: dict[str, str]) -> RetryMode:
    names = {name.lower() for name in headers}
    if method in IDEMPOTENT_METHODS or "if-match" in names:
        return RetryMode.ALWAYS
    if "idempotency-key" in names:
        return RetryMode.UNSENT_ONLY
    return RetryMode.NEVER


def retry_after_seconds(response: httpx.Response, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass
class CallPolicy:
    """The retry decisions for one call: built per call, since the deadline is per call."""

    mode: RetryMode
    attempts: int
    deadline: float  # on time.monotonic()
    base_wait: float
    max_wait: float
    shutdown: asyncio.Event

    def should_retry(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if exc is None or self.mode == RetryMode.NEVER or isinstance(exc, BreakerOpen):
            return False
        if isinstance(exc, RetryableStatus):
            status = exc.response.status_code
            return self.mode == RetryMode.ALWAYS or status in NOT_PROCESSED_STATUSES
        if not isinstance(exc, BackendUnavailable | BackendTimeout):
            return False
        # A call that never left (error_handler decides which) is always safe to repeat.
        return self.mode == RetryMode.ALWAYS or isinstance(exc, BackendNotReached)

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableStatus):
            asked = retry_after_seconds(exc.response)
            if asked is not None:
                return asked
        jitter = wait_random_exponential(multiplier=self.base_wait, max=self.max_wait)
        return float(jitter(state))

    def should_stop(self, state: RetryCallState) -> bool:
        if self.shutdown.is_set() or state.attempt_number >= self.attempts:
            return True
        # tenacity computes the wait before asking to stop. A wait that outlasts the
        # budget would only turn a clear answer into a timeout.
        return time.monotonic() + state.upcoming_sleep > self.deadline

    async def sleep(self, seconds: float) -> None:
        """Sleep between attempts, but end at once when the service shuts down."""
        try:
            await asyncio.wait_for(self.shutdown.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise BackendUnavailable("The middleware is shutting down.", 1.0)
