"""The analyzer: puts each series back in event-time order, runs its detector, trend test and
threshold rules, and keeps the findings.

Points that arrive out of order are held in a per-series buffer until the series' watermark
(its latest event time minus the allowed lateness) passes them, then analysed in order. A point
older than what the series has already analysed is late: counted and skipped, since the online
detectors cannot take a decision back. The buffer is bounded; when full its oldest point goes
ahead early. A series that has received nothing for `lateness` seconds of wall-clock time has
its buffer released at the next batch, so its newest points do not wait for ever.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from itertools import chain, count, islice
from operator import itemgetter
from typing import Any

import numpy as np

from telemetry import findings
from telemetry.alerts import AlertBook
from telemetry.detectors import DEFAULT_CONFIG, DetectorConfig, Flag, SeriesDetector
from telemetry.points import SeriesKey
from telemetry.processor import ProcessedBatch
from telemetry.rules import Rule, RuleBook
from telemetry.series_store import Ring, SeriesStore
from telemetry.sources import CachedRecords
from telemetry.trends import Trend, trend

logger = logging.getLogger(__name__)

MAX_SERIES = 100_000
RECENT_FINDINGS = 1_000
CRITICAL_SCORE = 0.75  # a surprise twice the detector's floor
SERIES_FACTS = ("team", "tier", "environment", "service_version")  # shown by a series' view
_latest_facts = itemgetter(*SERIES_FACTS)


@dataclasses.dataclass(frozen=True, slots=True)
class AnalyzerConfig:
    anomalies_per_series: int = 10_000
    max_series: int = MAX_SERIES
    lateness_seconds: float = 0.0
    reorder_max_points: int = 1_000  # per series
    series_points: int = 512  # recent points kept per series, for charts and trends
    trend_window: int = 64
    trend_p_value: float = 0.01
    max_rules: int = 1_000
    max_active_alerts: int = 10_000
    hysteresis: float = 0.05  # of the threshold, when a rule does not say
    comovement_bucket_seconds: float = 60.0
    comovement_max_series: int = 50

    @classmethod
    def from_settings(cls, settings: Any) -> AnalyzerConfig:
        return cls(
            anomalies_per_series=settings.telemetry_anomalies_per_series,
            # The processor bounds series first; the margin is room for its overflow series.
            max_series=settings.telemetry_max_series + 1_000,
            lateness_seconds=settings.telemetry_lateness_seconds,
            reorder_max_points=settings.telemetry_reorder_max_points,
            series_points=settings.telemetry_series_points,
            trend_window=settings.telemetry_trend_window,
            trend_p_value=settings.telemetry_trend_p_value,
            max_rules=settings.telemetry_max_rules,
            max_active_alerts=settings.telemetry_max_active_alerts,
            hysteresis=settings.telemetry_alert_hysteresis,
            comovement_bucket_seconds=settings.telemetry_comovement_bucket_seconds,
            comovement_max_series=settings.telemetry_comovement_max_series,
        )


class Series:
    """What the analyzer knows about one series."""

    __slots__ = (
        "key",
        "detector",
        "count",
        "late",
        "last_ts",
        "newest_ts",
        "last_value",
        "facts",
        "flags",
        "held",
        "last_arrival",
        "trend",
        "since_trend",
        "ring",
        "restarts",
    )

    def __init__(self, key: SeriesKey, config: DetectorConfig) -> None:
        self.key = key
        self.detector = SeriesDetector(config)
        self.count = 0
        self.late = 0
        self.last_ts = -math.inf  # the latest point analysed
        self.newest_ts = -math.inf  # the latest point seen, analysed or held
        self.last_value = math.nan
        # SERIES_FACTS of its latest point: only these, as keeping the whole point alive would
        # cost about 1.3 KB a series for four fields.
        self.facts: tuple[Any, ...] = (None,) * len(SERIES_FACTS)
        # Empty until the first flag: most series never raise one, and an empty deque is
        # already about 600 bytes, which at 10,000 series is 6 MB for nothing.
        self.flags: deque[dict[str, Any]] | tuple[()] = ()
        self.held: list[tuple[float, int, float, dict[str, Any]]] = []  # a heap by event time
        self.last_arrival = 0.0  # wall-clock time a point of this series last arrived
        self.trend: Trend | None = None
        self.since_trend = 0
        self.restarts = 0  # of its detector, after values that outgrew floating point
        self.ring: Ring | None = None  # its recent points, from its first analysed batch on


class Analyzer:
    def __init__(
        self,
        rules_source: CachedRecords | None = None,
        config: AnalyzerConfig | None = None,
        detector_config: DetectorConfig = DEFAULT_CONFIG,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config = config or AnalyzerConfig()
        self._clock = clock
        self._holding: set[SeriesKey] = set()  # series with points in their reorder buffer
        self._detector_config = detector_config
        self._series: dict[SeriesKey, Series] = {}
        self._arrival = count()  # keeps equal timestamps in arrival order in the heaps
        self.rules = RuleBook(rules_source, config.max_rules, config.hysteresis)
        self.alerts = AlertBook(config.max_active_alerts, clock)
        self.store = SeriesStore(config.series_points)
        self._trend_every = max(1, config.trend_window // 2)
        self.trends: deque[dict[str, Any]] = deque(maxlen=RECENT_FINDINGS)
        self.threshold_alerts: deque[dict[str, Any]] = deque(maxlen=RECENT_FINDINGS)
        self.counters = dict.fromkeys(
            (
                "analysed",
                "late",
                "reordered",
                "anomalies",
                "trends",
                "threshold_alerts",
                "series_refused",
                "detector_restarts",
            ),
            0,
        )

    @classmethod
    def from_settings(cls, settings: Any, rules_source: CachedRecords | None) -> Analyzer:
        return cls(rules_source, AnalyzerConfig.from_settings(settings))

    @property
    def series_count(self) -> int:
        return len(self._series)

    def analyze(self, batch: ProcessedBatch) -> None:
        for gone in self.rules.reindex():
            # A rule deleted or deactivated in the backend no longer holds its alerts open.
            self.alerts.resolve_rule(gone)
        if self._holding:
            self.release_idle()
        # Python lists, not arrays: most series have one or two points in a batch, where
        # NumPy's per-call cost is larger than the work.
        all_ts, all_values, points = batch.ts.tolist(), batch.values.tolist(), batch.points
        # NaN (a log or event) has no number; a batch of metrics alone needs no filter.
        numbers_only = not np.isnan(batch.values).any()
        known = self._series
        in_order = self.config.lateness_seconds <= 0
        for key, indices in batch.series:
            picked = indices.tolist()  # already in event-time order
            if not numbers_only:
                picked = [i for i in picked if all_values[i] == all_values[i]]
                if not picked:
                    continue
            series = known.get(key)
            if series is None:
                series = self._new_series(key)
                if series is None:
                    continue
            if in_order and not series.held and all_ts[picked[0]] >= series.last_ts:
                # Nothing late and nothing to wait for: what _release would return unchanged,
                # analysed straight from the batch's columns.
                newest = all_ts[picked[-1]]
                if newest > series.newest_ts:
                    series.newest_ts = newest
                self._analyze_series(series, picked, all_ts, all_values, points)
                continue
            stamps = [all_ts[i] for i in picked]
            values = [all_values[i] for i in picked]
            ready = self._release(series, stamps, values, [points[i] for i in picked])
            if ready[0]:
                self._analyze_series(series, range(len(ready[0])), *ready)

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
            findings.within(series.flags, since, until)
            for series in self._series.values()
            if series.flags
            and (service is None or series.key[0] == service)
            and (name is None or series.key[1] == name)
        ]
        merged = heapq.merge(*lanes, key=findings.timestamp)
        return [flag for _, flag in zip(range(limit), merged, strict=False)]

    def recent_anomalies(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest `limit` flags across every series, oldest first."""
        tails = (islice(reversed(series.flags), limit) for series in self._series.values())
        newest = heapq.nlargest(limit, chain.from_iterable(tails), key=findings.timestamp)
        return newest[::-1]

    def series(self, limit: int = 100) -> list[dict[str, Any]]:
        """The series with the most anomalies first, then the busiest."""
        ranked = sorted(self._series.values(), key=lambda s: (-len(s.flags), -s.count))
        return [findings.series_view(series) for series in ranked[:limit]]

    def _restart_detector(self, series: Series) -> Callable[[float, float], Any]:
        """A fresh detector for a series whose values outgrew floating point (swings near
        1e308 make its level inf - inf): one series must not fail every batch it is in."""
        self.counters["detector_restarts"] += 1
        series.restarts += 1
        if series.restarts == 1:  # once per series: its values may keep doing it
            logger.warning(
                "The detector of series %s/%s overflowed on its values and starts learning "
                "anew, as it will each time it overflows again.",
                series.key[0],
                series.key[1],
            )
        series.detector = SeriesDetector(self._detector_config)
        return series.detector.observe

    def _new_series(self, key: SeriesKey) -> Series | None:
        if len(self._series) >= self.config.max_series:
            if self.counters["series_refused"] == 0:
                logger.warning("Analyzer holds %d series; new series are not analysed.", len(self))
            self.counters["series_refused"] += 1
            return None
        series = Series(key, self._detector_config)
        # Series that start together would re-test their trends in the same batch every half
        # window (a 95 ms stall at 1,000 series); a per-series delay spreads those tests out.
        series.since_trend = -(len(self._series) % self._trend_every)
        self._series[key] = series
        return series

    def __len__(self) -> int:
        return len(self._series)

    def _release(
        self,
        series: Series,
        stamps: list[float],
        values: list[float],
        points: list[dict[str, Any]],
    ) -> tuple[list[float], list[float], list[dict[str, Any]]]:
        """The points now ready for analysis, in event time; late ones counted and dropped."""
        late = bisect.bisect_left(stamps, series.last_ts)
        if late:
            series.late += late
            self.counters["late"] += late
            stamps, values, points = stamps[late:], values[late:], points[late:]
        if not stamps:
            return [], [], []

        lateness = self.config.lateness_seconds
        if lateness <= 0 and not series.held:
            # Nothing to wait for: the batch is already in event-time order for this series.
            series.newest_ts = max(series.newest_ts, stamps[-1])
            return stamps, values, points
        return self._through_buffer(series, stamps, values, points, lateness)

    def _through_buffer(
        self,
        series: Series,
        stamps: list[float],
        values: list[float],
        points: list[dict[str, Any]],
        lateness: float,
    ) -> tuple[list[float], list[float], list[dict[str, Any]]]:
        held = series.held
        self.counters["reordered"] += bisect.bisect_left(stamps, series.newest_ts)
        for ts, value, point in zip(stamps, values, points, strict=True):
            heapq.heappush(held, (ts, next(self._arrival), value, point))
        series.newest_ts = max(series.newest_ts, stamps[-1])
        series.last_arrival = self._clock()
        return self._drain(series, series.newest_ts - lateness)

    def release_idle(self) -> None:
        """Analyse the held points of series that have been quiet for the lateness."""
        quiet_since = self._clock() - self.config.lateness_seconds
        for key in list(self._holding):
            series = self._series[key]
            if series.last_arrival <= quiet_since:
                ready = self._drain(series, math.inf)
                if ready[0]:
                    self._analyze_series(series, range(len(ready[0])), *ready)

    def _drain(
        self, series: Series, watermark: float
    ) -> tuple[list[float], list[float], list[dict[str, Any]]]:
        """Pop the held points at or below the watermark, plus any beyond the buffer's bound."""
        held = series.held
        ready_ts: list[float] = []
        ready_values: list[float] = []
        ready_points: list[dict[str, Any]] = []
        while held and (held[0][0] <= watermark or len(held) > self.config.reorder_max_points):
            ts, _, value, point = heapq.heappop(held)
            ready_ts.append(ts)
            ready_values.append(value)
            ready_points.append(point)

        if held:
            self._holding.add(series.key)
        else:
            self._holding.discard(series.key)
        return ready_ts, ready_values, ready_points

    def _analyze_series(
        self,
        series: Series,
        picked: Sequence[int],
        all_ts: list[float],
        all_values: list[float],
        points: list[dict[str, Any]],
    ) -> None:
        """Analyse the points at `picked` of the columns, in that order."""
        observe = series.detector.observe
        key = series.key
        rules = self.rules.for_metric(key[1])
        if rules:
            rules = [rule for rule in rules if rule.selects(key)]
        for index in picked:
            ts, value = all_ts[index], all_values[index]
            try:
                flag, _ = observe(ts, value)
            except (ArithmeticError, ValueError):  # see _restart_detector
                observe = self._restart_detector(series)
                flag = None
            if flag is not None:
                self._record_flag(series, points[index], ts, value, flag)
            if rules:
                self._evaluate_rules(rules, key, points[index], ts, value)

        if not math.isfinite(series.detector.level):
            self._restart_detector(series)

        last = picked[-1]
        series.count += len(picked)
        self.counters["analysed"] += len(picked)
        series.last_ts = all_ts[last]
        series.last_value = all_values[last]
        point = points[last]
        try:
            series.facts = _latest_facts(point)
        except KeyError:  # a point that skipped the enricher lacks these fields
            series.facts = tuple(map(point.get, SERIES_FACTS))

        ring = series.ring
        if ring is None:
            ring = series.ring = self.store.ring(key)
        if len(picked) == 1:
            ring.add(series.last_ts, series.last_value)
        else:
            ring.append([all_ts[i] for i in picked], [all_values[i] for i in picked])
        series.since_trend += len(picked)
        # Checked here, not in _follow_trend: a call per series and batch is measurable.
        if series.since_trend >= self._trend_every:
            series.since_trend = 0
            self._follow_trend(series, ring, point)

    def _evaluate_rules(
        self, rules: list[Rule], key: SeriesKey, point: dict[str, Any], ts: float, value: float
    ) -> None:
        for rule in rules:
            fired = self.alerts.evaluate(rule, key, point, ts, value)
            if fired is not None:
                self.threshold_alerts.append(findings.fired_view(fired, point))
                self.counters["threshold_alerts"] += 1

    def _follow_trend(self, series: Series, ring: Ring, point: dict[str, Any]) -> None:
        """Re-test the trend (every half window); report it when its direction changes."""
        window = self.config.trend_window

        ts, values = ring.recent(window)
        found = trend(ts, values, self.config.trend_p_value)
        if found is None:
            return
        before = series.trend.direction if series.trend is not None else "flat"
        series.trend = found
        if found.direction == before:
            return

        finding = findings.finding(series, point, float(ts[-1]), float(values[-1]))
        finding.update(
            direction=found.direction,
            slope_per_second=found.slope,
            tau=round(found.tau, 6),
            p_value=found.p_value,
            window_points=found.points,
        )
        self.trends.append(finding)
        self.counters["trends"] += 1

    def _record_flag(
        self, series: Series, point: dict[str, Any], ts: float, value: float, flag: Flag
    ) -> None:
        finding = findings.finding(series, point, ts, value)
        for field, measure in dataclasses.asdict(flag).items():
            finding[field] = round(measure, 6) if isinstance(measure, float) else measure
        finding["severity"] = "critical" if flag.score >= CRITICAL_SCORE else "warning"
        if not isinstance(series.flags, deque):
            series.flags = deque(maxlen=self.config.anomalies_per_series)
        series.flags.append(finding)
        self.counters["anomalies"] += 1
