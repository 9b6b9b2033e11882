"""A count-based circuit breaker with resilience4j's states and rules.

CLOSED records the outcome of the last `window_size` calls; once at least
`minimum_calls` are recorded and the failure rate reaches the threshold it
goes OPEN. A call slower than `slow_call_seconds` counts as a failure even
when it succeeded. OPEN fails fast for `open_seconds`, then HALF_OPEN lets
`half_open_calls` probes through: all of them must be judged before the
breaker decides, closing if their failure rate is below the threshold and
re-opening otherwise. The clock is injected so tests need not sleep.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import Counter, deque
from collections.abc import Callable

logger = logging.getLogger(__name__)


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


TransitionListener = Callable[[str, "BreakerState", "BreakerState"], None]


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        window_size: int = 20,
        minimum_calls: int = 10,
        failure_rate: float = 0.5,
        open_seconds: float = 10.0,
        half_open_calls: int = 3,
        slow_call_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.window_size = window_size
        self.minimum_calls = min(minimum_calls, window_size)
        self.failure_rate = failure_rate
        self.open_seconds = open_seconds
        self.half_open_calls = half_open_calls
        self.slow_call_seconds = slow_call_seconds
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._outcomes: deque[bool] = deque(maxlen=window_size)
        self._opened_at = 0.0
        self._probes_allowed = 0
        self._probe_outcomes: list[bool] = []
        self.transitions = 0
        self.transitions_to: Counter[BreakerState] = Counter()
        self.slow_calls = 0
        self._listeners: list[TransitionListener] = []

    @property
    def state(self) -> BreakerState:
        self._expire_open_state()
        return self._state

    def on_transition(self, listener: TransitionListener) -> None:
        """Call `listener(name, old, new)` on every state change (metrics use this)."""
        self._listeners.append(listener)

    def seconds_until_half_open(self) -> float:
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.open_seconds - self._clock())

    def try_acquire(self) -> bool:
        """Whether a call may go to the network now; a True must be followed by `record`."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN or self._probes_allowed == 0:
            return False
        self._probes_allowed -= 1
        return True

    def record(self, success: bool, duration: float = 0.0) -> None:
        """Judge one call that `try_acquire` let through; slow successes count as failures."""
        if self.slow_call_seconds is not None and duration > self.slow_call_seconds:
            self.slow_calls += 1
            success = False

        if self._state is BreakerState.HALF_OPEN:
            self._record_probe(success)
            return
        if self._state is BreakerState.OPEN:
            return  # a call that started before the breaker opened says nothing new

        self._outcomes.append(success)
        if (
            len(self._outcomes) >= self.minimum_calls
            and self._current_failure_rate(self._outcomes) >= self.failure_rate
        ):
            self._transition(BreakerState.OPEN)

    def snapshot(self) -> dict[str, object]:
        state = self.state
        return {
            "state": state.value,
            "failure_rate": round(self._current_failure_rate(self._outcomes), 3),
            "calls_in_window": len(self._outcomes),
            "slow_calls": self.slow_calls,
            "retry_after_seconds": round(self.seconds_until_half_open(), 3),
            "transitions": self.transitions,
        }

    def _record_probe(self, success: bool) -> None:
        self._probe_outcomes.append(success)
        if len(self._probe_outcomes) < self.half_open_calls:
            return
        if self._current_failure_rate(self._probe_outcomes) >= self.failure_rate:
            self._transition(BreakerState.OPEN)
        else:
            self._transition(BreakerState.CLOSED)

    def _expire_open_state(self) -> None:
        if (
            self._state is BreakerState.OPEN
            and self._clock() >= self._opened_at + self.open_seconds
        ):
            self._transition(BreakerState.HALF_OPEN)

    def _transition(self, new_state: BreakerState) -> None:
        old_state = self._state
        self._state = new_state
        self.transitions += 1
        self.transitions_to[new_state] += 1
        if new_state is BreakerState.OPEN:
            self._opened_at = self._clock()
        if new_state is BreakerState.HALF_OPEN:
            self._probes_allowed = self.half_open_calls
            self._probe_outcomes = []
        if new_state is BreakerState.CLOSED:
            self._outcomes.clear()

        logger.warning(
            "circuit breaker %s went from %s to %s", self.name, old_state.value, new_state.value
        )
        for listener in self._listeners:
            listener(self.name, old_state, new_state)

    @staticmethod
    def _current_failure_rate(outcomes: deque[bool] | list[bool]) -> float:
        if not outcomes:
            return 0.0
        return sum(1 for ok in outcomes if not ok) / len(outcomes)
