"""The discovery schedule: rounds, failures logged once, idempotent start and stop."""

from __future__ import annotations

import asyncio

from django_integration.discovery import BackendDiscovery
from django_integration.exceptions import BackendUnavailable


class Backend:
    """Answers discovery rounds, or fails them while `down`."""

    def __init__(self) -> None:
        self.down = False
        self.rounds = 0
        self.round_done = asyncio.Event()

    async def discover(self) -> None:
        self.rounds += 1
        self.round_done.set()
        if self.down:
            raise BackendUnavailable("The backend is unreachable (ConnectError).", 1.0)


async def test_failures_are_reported_and_logged_once_until_success(caplog) -> None:
    backend = Backend()
    backend.down = True
    discovery = BackendDiscovery(backend.discover, interval=60, clock=lambda: 1234.0)

    with caplog.at_level("INFO", logger="django_integration.discovery"):
        assert await discovery.run_once() is False
        assert await discovery.run_once() is False
        assert discovery.report() == {
            "ok": False,
            "last_success": None,
            "last_error": "The backend is unreachable (ConnectError).",
            "rounds": 2,
            "interval_seconds": 60,
        }
        backend.down = False
        assert await discovery.run_once() is True

    assert [record.getMessage() for record in caplog.records] == [
        "backend discovery failed, will retry on schedule: "
        "The backend is unreachable (ConnectError).",
        "backend discovery succeeded again after a failure",
    ]
    assert discovery.report()["ok"] is True
    assert discovery.report()["last_success"] == "1970-01-01T00:20:34Z"


async def test_schedule_runs_rounds_until_stopped() -> None:
    backend = Backend()
    discovery = BackendDiscovery(backend.discover, interval=0.01)
    discovery.start()
    discovery.start()  # a second start while running adds no second loop
    for _ in range(3):
        backend.round_done.clear()
        await asyncio.wait_for(backend.round_done.wait(), timeout=5)
    await discovery.stop()
    await discovery.stop()

    rounds = backend.rounds
    await asyncio.sleep(0.05)
    assert backend.rounds == rounds  # nothing runs after stop
    assert discovery.rounds == rounds


async def test_stop_before_start_is_harmless() -> None:
    discovery = BackendDiscovery(Backend().discover, interval=1)
    await discovery.stop()
    assert discovery.report()["rounds"] == 0
