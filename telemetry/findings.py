"""What the analyzer reports: anomaly and trend findings, fired alerts and series summaries.

Plain dicts with float Unix timestamps; the routes render the times as ISO 8601.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from telemetry.analyzer import Series


def finding(series: Series, point: dict[str, Any], ts: float, value: float) -> dict[str, Any]:
    service, name, attributes = series.key
    return {
        "service": service,
        "name": name,
        "attributes": dict(attributes),
        "timestamp": ts,
        "value": value,
        "unit": point.get("unit"),
        "team": point.get("team"),
        "tier": point.get("tier"),
        "environment": point.get("environment"),
        "hour_of_day": point.get("hour_of_day"),
        "weekday": point.get("weekday"),
    }


def fired_view(alert: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """A fired alert as the analysis lists it: when it fired, and since when the breach held."""
    return {
        "rule": alert["rule"],
        "service": alert["service"],
        "name": alert["name"],
        "attributes": alert["attributes"],
        "timestamp": alert["fired_at"],
        "breach_started": alert["started_at"],
        "value": alert["value"],
        "operator": alert["operator"],
        "threshold": alert["threshold"],
        "severity": alert["severity"],
        "team": point.get("team"),
        "tier": point.get("tier"),
    }


def timestamp(finding: dict[str, Any]) -> float:
    return finding["timestamp"]


def within(
    flags: Iterable[dict[str, Any]], since: float | None, until: float | None
) -> Iterator[dict[str, Any]]:
    for flag in flags:
        ts = flag["timestamp"]
        if since is not None and ts < since:
            continue
        if until is not None and ts > until:
            return
        yield flag


def series_view(series: Series) -> dict[str, Any]:
    service, name, attributes = series.key
    detector = series.detector
    team, tier, environment, service_version = series.facts
    found = series.trend
    return {
        "service": service,
        "name": name,
        "attributes": dict(attributes),
        "points": series.count,
        "late_points": series.late,
        "held_points": len(series.held),
        "last_timestamp": series.last_ts if series.count else None,
        "last_value": series.last_value if series.count else None,
        "mean": _finite_or_none(detector.mean),
        "std": _finite_or_none(math.sqrt(detector.var)),
        "trend": found.direction if found is not None else "flat",
        "trend_slope_per_second": found.slope if found is not None else None,
        "trend_p_value": found.p_value if found is not None else None,
        "anomalies": len(series.flags),
        "team": team,
        "tier": tier,
        "environment": environment,
        "service_version": service_version,
    }


def _finite_or_none(number: float) -> float | None:
    # JSON has no inf or NaN: a series whose values outgrew floating point shows no figure.
    return number if math.isfinite(number) else None
