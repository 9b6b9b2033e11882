"""The breaker's state machine, driven by an injected clock: no sleeping."""

from django_integration.circuit_breaker import BreakerState, CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_breaker(clock: FakeClock) -> CircuitBreaker:
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
    breaker = make_breaker(FakeClock())
    record(breaker, False, False, False)
    assert breaker.state is BreakerState.CLOSED


def test_opens_at_failure_rate_threshold() -> None:
    breaker = make_breaker(FakeClock())
    record(breaker, True, True, False, False)
    assert breaker.state is BreakerState.OPEN
    assert breaker.try_acquire() is False


def test_stays_closed_below_failure_rate() -> None:
    breaker = make_breaker(FakeClock())
    record(breaker, True, True, True, False, True)
    assert breaker.state is BreakerState.CLOSED


def test_window_slides_over_old_outcomes() -> None:
    breaker = make_breaker(FakeClock())
    record(breaker, False, True, True, True, True)  # the failure leaves the window of 4
    record(breaker, False)
    assert breaker.state is BreakerState.CLOSED


def test_open_reports_time_left_then_goes_half_open() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    record(breaker, False, False, False, False)
    clock.now += 4.0
    assert breaker.seconds_until_half_open() == 6.0
    clock.now += 6.0
    assert breaker.state is BreakerState.HALF_OPEN


def test_half_open_allows_only_the_probe_calls() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    record(breaker, False, False, False, False)
    clock.now += 10.0
    assert breaker.try_acquire() is True
    assert breaker.try_acquire() is True
    assert breaker.try_acquire() is False


def test_successful_probes_close_it() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    record(breaker, False, False, False, False)
    clock.now += 10.0
    record(breaker, True, True)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot()["calls_in_window"] == 0


def test_failed_probes_reopen_it_for_a_full_wait() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    record(breaker, False, False, False, False)
    clock.now += 10.0
    record(breaker, True, False)
    assert breaker.state is BreakerState.OPEN
    assert breaker.seconds_until_half_open() == 10.0
    assert breaker.transitions == 3
