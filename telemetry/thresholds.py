"""Threshold findings from the backend's alert rules, matched to series by metric name.

A rule fires when its condition has held for its evaluation window (in event time) and fires
again only after the condition has cleared: one breach, one alert.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable
from typing import Any

from telemetry.points import SeriesKey
from telemetry.sources import CachedRecords

logger = logging.getLogger(__name__)

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "eq": operator.eq,
    "ne": operator.ne,
}


class ThresholdRules:
    def __init__(self, source: CachedRecords | None) -> None:
        self._source = source
        self._version = -1
        self._by_metric: dict[str, list[dict[str, Any]]] = {}
        # (rule name, series) -> event time the breach began, and whether it has fired
        self._breaches: dict[tuple[str, SeriesKey], list[Any]] = {}

    @property
    def count(self) -> int:
        return sum(len(rules) for rules in self._by_metric.values())

    def reindex(self) -> None:
        source = self._source
        if source is None or source.version == self._version:
            return
        by_metric: dict[str, list[dict[str, Any]]] = {}
        for record in source.records:
            rule = _parse_rule(record)
            if rule is not None:
                by_metric.setdefault(rule["metric_name"], []).append(rule)
        self._by_metric = by_metric
        self._version = source.version

    def for_metric(self, name: str) -> list[dict[str, Any]]:
        return self._by_metric.get(name, [])

    def evaluate(
        self,
        rules: list[dict[str, Any]],
        series: SeriesKey,
        point: dict[str, Any],
        ts: float,
        value: float,
    ) -> list[dict[str, Any]]:
        """Alerts that this point raises; usually none."""
        alerts = []
        for rule in rules:
            key = (rule["name"], series)
            if not rule["compare"](value, rule["threshold"]):
                self._breaches.pop(key, None)
                continue

            breach = self._breaches.setdefault(key, [ts, False])
            if breach[1] or ts - breach[0] < rule["evaluation_window"]:
                continue
            breach[1] = True
            alerts.append(_alert(rule, series, point, ts, value, since=breach[0]))
        return alerts


def _parse_rule(record: dict[str, Any]) -> dict[str, Any] | None:
    if record.get("is_active") is False:
        return None
    try:
        rule = {
            "name": str(record["name"]),
            "metric_name": str(record["metric_name"]),
            "operator": str(record["operator"]),
            "compare": OPERATORS[record["operator"]],
            "threshold": float(record["threshold"]),
            "evaluation_window": float(record.get("evaluation_window") or 0),
            "severity": str(record.get("severity") or "warning"),
        }
    except (KeyError, TypeError, ValueError):
        logger.warning("Ignoring alert rule %r: it lacks a usable field.", record.get("name"))
        return None
    return rule


def _alert(
    rule: dict[str, Any],
    series: SeriesKey,
    point: dict[str, Any],
    ts: float,
    value: float,
    since: float,
) -> dict[str, Any]:
    service, name, attributes = series
    return {
        "rule": rule["name"],
        "service": service,
        "name": name,
        "attributes": dict(attributes),
        "timestamp": ts,
        "breach_started": since,
        "value": value,
        "operator": rule["operator"],
        "threshold": rule["threshold"],
        "severity": rule["severity"],
        "team": point.get("team"),
        "tier": point.get("tier"),
    }
