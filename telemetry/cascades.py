"""Cascades: an error burst in one service followed, within a window, by errors in its callers.

A burst is `burst_errors` errors of one service within the window. It opens a cascade with that
service as origin; a caller of any member that errs while the cascade is active (its last error
within the window) joins it, so one incident spreading upwards is reported once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import Any

from telemetry.points import iso

KEPT_CASCADES = 1_000
# Only the latest cascades can still be active; scanning all kept ones per error would not pay.
ACTIVE_SCAN = 50
MAX_SERVICES_TRACKED = 10_000


class CascadeDetector:
    def __init__(
        self, window: float, burst_errors: int, callers: Callable[[str], set[str]]
    ) -> None:
        self.window = window
        self.burst_errors = burst_errors
        self._callers = callers
        self._recent: dict[str, deque[float]] = {}  # service -> its latest error times
        self._cascades: deque[dict[str, Any]] = deque(maxlen=KEPT_CASCADES)

    def observe(self, service: str, ts: float) -> None:
        """Take one error, in event-time order."""
        recent = self._errors_of(service)
        recent.append(ts)

        cascade = self._joinable(service, ts)
        if cascade is not None:
            self._join(cascade, service, ts)
            return
        if len(recent) == self.burst_errors and ts - recent[0] <= self.window:
            self._open(service, recent[0], ts)

    def cascades(
        self, service: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[tuple[float, dict[str, Any]]]:
        """Cascades that spread to at least one caller, with their start, the latest first."""
        found = []
        for cascade in reversed(self._cascades):
            if not cascade["affected"]:
                continue
            if service is not None and service not in cascade["members"]:
                continue
            if since is not None and cascade["last"] < since:
                continue
            if until is not None and cascade["start"] > until:
                continue
            found.append((cascade["start"], _view(cascade)))
        return found

    def _errors_of(self, service: str) -> deque[float]:
        recent = self._recent.get(service)
        if recent is None:
            if len(self._recent) >= MAX_SERVICES_TRACKED:
                self._recent.pop(next(iter(self._recent)))
            recent = self._recent[service] = deque(maxlen=self.burst_errors)
        return recent

    def _joinable(self, service: str, ts: float) -> dict[str, Any] | None:
        for cascade in islice(reversed(self._cascades), ACTIVE_SCAN):
            if ts - cascade["last"] > self.window or ts < cascade["start"]:
                continue
            if service in cascade["members"]:
                return cascade
            if any(service in self._callers(member) for member in cascade["members"]):
                return cascade
        return None

    def _join(self, cascade: dict[str, Any], service: str, ts: float) -> None:
        cascade["errors"] += 1
        cascade["last"] = max(cascade["last"], ts)
        if service not in cascade["members"]:
            cascade["members"].append(service)
            cascade["affected"].append(service)

    def _open(self, origin: str, start: float, ts: float) -> None:
        cascade = {
            "origin": origin,
            "start": start,
            "last": ts,
            "errors": self.burst_errors,
            "members": [origin],
            "affected": [],
        }
        self._cascades.append(cascade)
        # Callers may have failed between the burst's first error and the one that completed it.
        for caller in sorted(self._callers(origin)):
            earlier = [t for t in self._recent.get(caller, ()) if start <= t <= ts]
            if earlier:
                cascade["errors"] += len(earlier)
                cascade["members"].append(caller)
                cascade["affected"].append(caller)


def _view(cascade: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "cascade",
        "origin_service": cascade["origin"],
        "affected_services": list(cascade["affected"]),
        "services": sorted(cascade["members"]),
        "first_seen": iso(cascade["start"]),
        "last_seen": iso(cascade["last"]),
        "error_count": cascade["errors"],
    }
