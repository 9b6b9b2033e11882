"""Alerts and their lifecycle: pending -> firing -> resolved, in event time, with hysteresis.

A rule's condition opens a pending alert for a series; held for the rule's `for_seconds` it
fires; a firing alert resolves only once the value is back past the threshold by the rule's
hysteresis, so a value hovering at the threshold does not flap. A pending alert whose condition
clears before it fires resolves without ever firing. Every change is queued for the sink, which
persists it (and tells the backend) outside the worker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from telemetry.points import SeriesKey
from telemetry.rules import Rule

logger = logging.getLogger(__name__)

PENDING, FIRING, RESOLVED = "pending", "firing", "resolved"


def fingerprint(rule_id: str, key: SeriesKey) -> str:
    """One condition: a rule on a series. Its alerts over time share this."""
    service, name, attributes = key
    text = json.dumps([rule_id, service, name, [list(item) for item in attributes]], default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class AlertBook:
    def __init__(self, max_active: int, clock: Callable[[], float] = time.time) -> None:
        self.max_active = max_active
        self._clock = clock
        self.active: dict[str, dict[str, Any]] = {}  # fingerprint -> its open alert
        self._changes: dict[str, dict[str, Any]] = {}  # alert id -> latest state to persist
        # Bounded like the active set: a change waits here until the sink takes it.
        self._max_changes = 10 * max_active
        self.counters = dict.fromkeys(("fired", "resolved", "refused", "unsaved"), 0)
        self.on_change: Callable[[], None] = _nothing

    def evaluate(
        self, rule: Rule, key: SeriesKey, point: dict[str, Any], ts: float, value: float
    ) -> dict[str, Any] | None:
        """Apply one value of a selected series; the alert if it has just fired."""
        condition = rule.compare(value, rule.value)
        mark = fingerprint(rule.id, key)
        alert = self.active.get(mark)
        if alert is None:
            if not condition:
                return None
            alert = self._open(mark, rule, key, point, ts, value)
            if alert is None:
                return None

        alert["value"] = value
        if alert["state"] == PENDING:
            if not condition:
                self._close(alert, ts)
                return None
            if ts - alert["started_at"] >= rule.for_seconds:
                return self._fire(alert, ts)
            return None
        if rule.clears(value):
            self._close(alert, ts)
        return None

    def resolve_rule(self, rule_id: str) -> int:
        """Resolve every open alert of a deleted rule, at the wall-clock time; how many."""
        now = self._clock()
        closing = [alert for alert in self.active.values() if alert["rule_id"] == rule_id]
        for alert in closing:
            self._close(alert, now)
        return len(closing)

    def take_changes(self) -> list[dict[str, Any]]:
        changes = list(self._changes.values())
        self._changes.clear()
        return changes

    def put_back(self, changes: list[dict[str, Any]]) -> None:
        """Return changes that could not be saved; a newer change of the same alert wins."""
        for change in changes:
            self._changes.setdefault(change["id"], change)

    def _open(
        self,
        mark: str,
        rule: Rule,
        key: SeriesKey,
        point: dict[str, Any],
        ts: float,
        value: float,
    ) -> dict[str, Any] | None:
        if len(self.active) >= self.max_active:
            if self.counters["refused"] == 0:
                logger.warning("%d alerts are open; new ones are refused.", self.max_active)
            self.counters["refused"] += 1
            return None

        service, name, attributes = key
        alert = {
            "id": str(uuid.uuid4()),
            "fingerprint": mark,
            "rule": rule.name,
            "rule_id": rule.id,
            "backend_rule_id": rule.backend_id,
            "service": service,
            "name": name,
            "attributes": dict(attributes),
            "severity": rule.severity,
            "state": PENDING,
            "value": value,
            "operator": rule.operator,
            "threshold": rule.value,
            "team": point.get("team"),
            "started_at": ts,
            "fired_at": None,
            "resolved_at": None,
        }
        self.active[mark] = alert
        self._changed(alert)
        return alert

    def _fire(self, alert: dict[str, Any], ts: float) -> dict[str, Any]:
        alert["state"] = FIRING
        alert["fired_at"] = ts
        self.counters["fired"] += 1
        self._changed(alert)
        return alert

    def _close(self, alert: dict[str, Any], ts: float) -> None:
        alert["state"] = RESOLVED
        alert["resolved_at"] = max(ts, alert["started_at"])
        self.active.pop(alert["fingerprint"], None)
        self.counters["resolved"] += 1
        self._changed(alert)

    def _changed(self, alert: dict[str, Any]) -> None:
        if alert["id"] not in self._changes and len(self._changes) >= self._max_changes:
            # The sink is far behind (the database is down); the alert lives on in memory.
            self.counters["unsaved"] += 1
            return
        self._changes[alert["id"]] = {**alert, "updated_at": self._clock()}
        self.on_change()


def _nothing() -> None:
    return None
