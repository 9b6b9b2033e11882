"""The analyzer: runs each series' detectors in event time and keeps the findings.

A point older than the latest one already analysed in its series is counted as late and not
analysed: the detectors are strictly online and cannot take back a decision.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import deque
from collections.abc import Iterator
from itertools import chain, islice
from typing import Any

import numpy as np

from telemetry.detectors import DEFAULT_CONFIG, DetectorConfig, Flag, SeriesDetector
from telemetry.points import SeriesKey
from telemetry.processor import ProcessedBatch
from telemetry.thresholds import ThresholdRules

logger = logging.getLogger(__name__)

MAX_SERIES = 100_000
RECENT_FINDINGS = 1_000
_TREND_NAMES = {-1: "falling", 0: "flat", 1: "rising"}


class Series:
    """What the analyzer knows about one series."""

    __slots__ = ("key", "detector", "count", "late", "last_ts", "last_value", "facts", "flags")

    def __init__(self, key: SeriesKey, config: DetectorConfig, flags_kept: int) -> None:
        self.key = key
        self.detector = SeriesDetector(config)
        self.count = 0
        self.late = 0
        self.last_ts = -math.inf
        self.last_value = math.nan
        self.facts: dict[str, Any] = {}
        self.flags: deque[dict[str, Any]] = deque(maxlen=flags_kept)


class Analyzer:
    def __init__(
        self,
        rules: ThresholdRules,
        anomalies_per_series: int,
        config: DetectorConfig = DEFAULT_CONFIG,
    ) -> None:
        self.rules = rules
        self._per_series = anomalies_per_series
        self._config = config
        self._series: dict[SeriesKey, Series] = {}
        self.trends: deque[dict[str, Any]] = deque(maxlen=RECENT_FINDINGS)
        self.threshold_alerts: deque[dict[str, Any]] = deque(maxlen=RECENT_FINDINGS)
        self.counters = dict.fromkeys(
            ("analysed", "late", "anomalies", "trends", "threshold_alerts", "series_refused"), 0
        )

    @property
    def series_count(self) -> int:
        return len(self._series)

    def analyze(self, batch: ProcessedBatch) -> None:
        self.rules.reindex()
        values = batch.values
        for key, indices in batch.series:
            series_values = values[indices]
            if np.isnan(series_values).all():
                continue
            series = self._series_for(key)
            if series is None:
                continue
            points = [batch.points[i] for i in indices.tolist()]
            self._analyze_series(series, points, batch.ts[indices].tolist(), series_values)

    def anomalies(
        self,
        service: str | None = None,
        name: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Flags ordered by timestamp, the earliest `limit` of those that match."""
        lanes = [
            _within(series.flags, since, until)
            for series in self._series.values()
            if series.flags
            and (service is None or series.key[0] == service)
            and (name is None or series.key[1] == name)
        ]
        merged = heapq.merge(*lanes, key=_timestamp)
        return [flag for _, flag in zip(range(limit), merged, strict=False)]

    def recent_anomalies(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest `limit` flags across every series, oldest first."""
        tails = (islice(reversed(series.flags), limit) for series in self._series.values())
        newest = heapq.nlargest(limit, chain.from_iterable(tails), key=_timestamp)
        return newest[::-1]

    def series(self, limit: int = 100) -> list[dict[str, Any]]:
        """The series with the most anomalies first, then the busiest."""
        ranked = sorted(self._series.values(), key=lambda s: (-len(s.flags), -s.count))
        return [_series_view(series) for series in ranked[:limit]]

    def _series_for(self, key: SeriesKey) -> Series | None:
        series = self._series.get(key)
        if series is not None:
            return series
        if len(self._series) >= MAX_SERIES:
            if self.counters["series_refused"] == 0:
                logger.warning("Analyzer holds %d series; new series are not analysed.", MAX_SERIES)
            self.counters["series_refused"] += 1
            return None
        series = self._series[key] = Series(key, self._config, self._per_series)
        return series

    def _analyze_series(
        self, series: Series, points: list[dict[str, Any]], stamps: list[float], values: Any
    ) -> None:
        detector = series.detector
        rules = self.rules.for_metric(series.key[1])
        for point, ts, value in zip(points, stamps, values.tolist(), strict=True):
            if value != value:  # NaN: a log or event in a metric's series carries no number
                continue
            if ts < series.last_ts:
                series.late += 1
                self.counters["late"] += 1
                continue

            series.count += 1
            self.counters["analysed"] += 1
            series.last_ts = ts
            series.last_value = value
            series.facts = point
            flag, trend = detector.observe(value)
            if flag is not None:
                self._record_flag(series, point, ts, value, flag)
            if trend is not None:
                self._record_trend(series, point, ts, value, trend)
            if rules:
                for alert in self.rules.evaluate(rules, series.key, point, ts, value):
                    self.threshold_alerts.append(alert)
                    self.counters["threshold_alerts"] += 1

    def _record_flag(
        self, series: Series, point: dict[str, Any], ts: float, value: float, flag: Flag
    ) -> None:
        severe = abs(flag.zscore) >= 2 * self._config.z_threshold
        finding = _finding(series, point, ts, value)
        finding.update(
            score=round(flag.score, 6),
            detector=flag.detector,
            severity="critical" if severe else "warning",
            zscore=round(flag.zscore, 3),
            expected_low=flag.expected_low,
            expected_high=flag.expected_high,
        )
        series.flags.append(finding)
        self.counters["anomalies"] += 1

    def _record_trend(
        self, series: Series, point: dict[str, Any], ts: float, value: float, trend: int
    ) -> None:
        finding = _finding(series, point, ts, value)
        finding["direction"] = _TREND_NAMES[trend]
        finding["baseline"] = series.detector.mean
        self.trends.append(finding)
        self.counters["trends"] += 1


def _finding(series: Series, point: dict[str, Any], ts: float, value: float) -> dict[str, Any]:
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


def _timestamp(finding: dict[str, Any]) -> float:
    return finding["timestamp"]


def _within(
    flags: deque[dict[str, Any]], since: float | None, until: float | None
) -> Iterator[dict[str, Any]]:
    for flag in flags:
        ts = flag["timestamp"]
        if since is not None and ts < since:
            continue
        if until is not None and ts > until:
            return
        yield flag


def _series_view(series: Series) -> dict[str, Any]:
    service, name, attributes = series.key
    detector = series.detector
    facts = series.facts
    return {
        "service": service,
        "name": name,
        "attributes": dict(attributes),
        "points": series.count,
        "late_points": series.late,
        "last_timestamp": series.last_ts if series.count else None,
        "last_value": series.last_value if series.count else None,
        "mean": detector.mean,
        "std": math.sqrt(detector.var),
        "trend": _TREND_NAMES[detector.trend],
        "anomalies": len(series.flags),
        "team": facts.get("team"),
        "tier": facts.get("tier"),
        "environment": facts.get("environment"),
        "service_version": facts.get("service_version"),
    }
