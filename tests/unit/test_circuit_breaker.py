"""The breaker's state machine, driven by an injected clock: no sleeping."""

from django_integration.circuit_breaker import BreakerState, CircuitBreaker
from tests.clock import ManualClock


def make_breaker(clock: ManualClock) -> CircuitBreaker:
    return CircuitBreaker(
        "test",
        window_size=4,
        minimum_calls=4,
        failure_rate=0.5,
        open_seconds=10.0,
        half_open_calls=2,
        clock=clock,
    )


def record(breaker: CircuitBreaker, *outcomes: bool) -> None:
    for success in outcomes:
        assert breaker.try_acquire() is True
        breaker.record(success)


def test_stays_closed_below_minimum_calls() -> None:
    breaker = make_breaker(ManualClock())
    record(breaker, False, False, False)
    assert breaker.state is BreakerState.CLOSED


def test_opens_at_failure_rate_threshold() -> None:
    breaker = make_breaker(ManualClock())
    record(breaker, True, True, False, False)
    assert breaker.state is BreakerState.OPEN
    assert breaker.try_acquire() is False


def test_stays_closed_below_failure_rate() -> None:
    breaker = make_breaker(ManualClock())
    record(breaker, True, True, True, False, True)
    assert breaker.state is BreakerState.CLOSED


def test_window_slides_over_old_outcomes() -> None:
    breaker = make_breaker(ManualClock())
    record(breaker, False, True, True, True, True)  # the failure leaves the window of 4
    record(breaker, False)
    assert breaker.state is BreakerState.CLOSED


def test_open_reports_time_left_then_goes_half_open() -> None:
    clock = ManualClock()
    breaker = make_breaker(clock)
    record(breaker, False, False, False, False)
    clock.now += 4.0
    assert breaker.seconds_until_half_open() == 6.0
    clock.now += 6.0
    assert breaker.state is BreakerState.HALF_OPEN


def test_half_open_allows_only_the_probe_calls() -> None:
    clock = ManualClock()
    breaker = make_breaker(clock)
    record(breaker, False, False, False, False)
    clock.now += 10.0
    assert breaker.try_acquire() is True
    assert breaker.try_acquire() is True
    assert breaker.try_acquire() is False


def test_successful_probes_close_it() -> None:
    clock = ManualClock()
    breaker = make_breaker(clock)
    record(breaker, False, False, False, False)
    clock.now += 10.0
    record(breaker, True, True)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot()["calls_in_window"] == 0


def test_failed_probes_reopen_it_for_a_full_wait() -> None:
    clock = ManualClock()
    breaker = make_breaker(clock)
    record(breaker, False, False, False, False)
    clock.now += 10.0
    record(breaker, True, False)
    assert breaker.state is BreakerState.OPEN
    assert breaker.seconds_until_half_open() == 10.0
    assert breaker.transitions == 3


def test_slow_successes_count_as_failures() -> None:
    breaker = CircuitBreaker(
        "slow", window_size=4, minimum_calls=4, failure_rate=0.5, slow_call_seconds=1.0
    )
    for duration in (0.2, 0.3, 1.5, 2.0):
        assert breaker.try_acquire() is True
        breaker.record(success=True, duration=duration)
    assert breaker.state is BreakerState.OPEN
    assert breaker.slow_calls == 2


def test_without_a_slow_limit_duration_is_ignored() -> None:
    breaker = make_breaker(ManualClock())
    for _ in range(4):
        assert breaker.try_acquire() is True
        breaker.record(success=True, duration=120.0)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.slow_calls == 0


def test_a_slow_probe_reopens_it() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(
        "slow", window_size=2, minimum_calls=2, open_seconds=5.0, half_open_calls=1,
        slow_call_seconds=1.0, clock=clock,
    )  # fmt: skip
    record(breaker, False, False)
    clock.now += 5.0
    assert breaker.try_acquire() is True
    breaker.record(success=True, duration=3.0)
    assert breaker.state is BreakerState.OPEN


def test_open_rejects_until_the_wait_ends_exactly() -> None:
    clock = ManualClock()
    breaker = make_breaker(clock)
    record(breaker, False, False, False, False)
    clock.now += 9.999
    assert breaker.try_acquire() is False
    assert breaker.state is BreakerState.OPEN
    clock.now += 0.001
    assert breaker.try_acquire() is True
    assert breaker.state is BreakerState.HALF_OPEN


def test_each_state_change_is_reported_once_to_listeners_and_log(caplog) -> None:
    clock = ManualClock()
    breaker = make_breaker(clock)
    seen: list[tuple[str, str, str]] = []
    breaker.on_transition(lambda name, old, new: seen.append((name, old.value, new.value)))

    with caplog.at_level("WARNING", logger="django_integration.circuit_breaker"):
        record(breaker, False, False, False, False)
        assert breaker.try_acquire() is False  # still open: no new transition
        clock.now += 10.0
        record(breaker, True, True)

    assert seen == [
        ("test", "closed", "open"),
        ("test", "open", "half_open"),
        ("test", "half_open", "closed"),
    ]
    assert [r.getMessage() for r in caplog.records] == [
        "circuit breaker test went from closed to open",
        "circuit breaker test went from open to half_open",
        "circuit breaker test went from half_open to closed",
    ]
    assert dict(breaker.transitions_to) == {
        BreakerState.OPEN: 1,
        BreakerState.HALF_OPEN: 1,
        BreakerState.CLOSED: 1,
    }


def test_calls_ending_while_open_do_not_change_the_window() -> None:
    breaker = make_breaker(ManualClock())
    for _ in range(4):
        assert breaker.try_acquire() is True
    for _ in range(4):
        breaker.record(False)  # four calls in flight fail; the fourth opens it
    breaker.record(True)  # a straggler that started before it opened
    assert breaker.state is BreakerState.OPEN
    assert breaker.snapshot()["calls_in_window"] == 4


def test_snapshot_reports_the_open_state() -> None:
    clock = ManualClock()
    breaker = make_breaker(clock)
    record(breaker, True, False, False, False)
    clock.now += 2.5
    assert breaker.snapshot() == {
        "state": "open",
        "failure_rate": 0.75,
        "calls_in_window": 4,
        "slow_calls": 0,
        "retry_after_seconds": 7.5,
        "transitions": 1,
    }
