"""The online anomaly detector of one series: baselines, surprise, and a record-based gate.

Each value is compared with three baselines: a slow level, a daily profile and a weekly profile
(telemetry/seasonality.py). The baseline that has predicted the series best so far judges it, so
each series picks its own seasonality. Three detectors read that baseline's residual, in units of
the residual's own typical size: `spike` (this point), `level_shift` (the recent mean residual)
and `variance` (the recent mean absolute residual). Their surprises are log-scaled and the largest
is the point's surprise. A pattern memory (telemetry/detector_patterns.py) says whether the last
few values, with the value expected now, form a pattern the series has shown before; a familiar
pattern's surprise counts for less, so a series' habitual spikes and dips stop raising alarms.

A flag needs a surprise above a floor and above the series' own record of surprise, which relaxes
slowly (by `record_decay / points seen` per point). A series therefore learns what is usual for
it: a noisy series must beat its noisiest moments so far, and alarms thin out as it ages. After a
flag the series holds further flags for a while: one incident, one anomaly.

Every decision uses the point and earlier ones only; time and memory per point are constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from telemetry.detector_patterns import PatternMemory
from telemetry.seasonality import DAY, WEEK, SeasonalProfile


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    warmup_points: int = 150  # no flags until the baselines have seen this many points
    record_start: int = 500  # records start here, once the baselines have settled
    level_alpha: float = 0.01  # about the last 100 points shape the level and residual scales
    short_alpha: float = 0.1  # about the last 10 points make the "recent" residual
    slot_alpha: float = 0.1  # weight of a new value in its daily or weekly slot
    day_slots: int = 48
    week_slots: int = 84
    residual_clip: float = 10.0  # scales beyond which a residual enters the scale clipped
    scale_floor: float = 0.02  # of the series' spread: a flat stretch does not make z infinite
    z_cap: float = 1000.0
    min_surprise: float = 2.0  # log(1 + z): a z of about 6.4 at least
    record_decay: float = 0.5  # the record loses this / points seen of itself each point
    hold_points: int = 100  # after a flag, the series stays quiet this long
    trend_enter: float = 3.0  # fast-vs-level distance, in level scales, that starts a trend
    trend_leave: float = 1.0
    pattern_length: int = 4  # values in a pattern
    pattern_bins: int = 12  # bins across the range of the first `warmup_points` values
    pattern_slots: int = 512  # patterns remembered, 4 bytes each
    familiar_weight: float = 0.8  # a familiar pattern's surprise counts this much


DEFAULT_CONFIG = DetectorConfig()
BASELINES = ("level", "daily", "weekly")
DETECTORS = ("spike", "level_shift", "variance")
PATTERNS = {True: "new", False: "familiar", None: "learning"}
_MIN_JUDGED = 50  # points before the baselines' errors are compared at all
_ABS_Z_CAP = 50.0  # a single point moves the recent mean absolute residual at most this far


@dataclass(slots=True)
class Flag:
    detector: str  # "spike", "level_shift" or "variance"
    baseline: str  # "level", "daily" or "weekly": what the value was compared with
    zscore: float  # the point's residual in residual scales
    surprise: float  # log(1 + z) of the detector that fired
    score: float  # in [0, 1]: 0.5 at the floor, towards 1 as the weighted surprise grows
    expected: float
    expected_low: float
    expected_high: float
    pattern: str  # "new", "familiar" (seen before, so weighted down) or "learning"
    pattern_novelty: float  # the share of new patterns among the series' last ~100


class SeriesDetector:
    """The running state of one series; `observe` each point in event-time order."""

    __slots__ = (
        "config",
        "count",
        "level",
        "spread",
        "fast",
        "daily",
        "weekly",
        "scales",
        "shifts",
        "abs_means",
        "record",
        "hold",
        "trend",
        "patterns",
        "_shift_norm",
    )

    def __init__(self, config: DetectorConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self.count = 0
        self.level = self.spread = self.fast = 0.0
        self.daily = SeasonalProfile(DAY, config.day_slots, config.slot_alpha)
        self.weekly = SeasonalProfile(WEEK, config.week_slots, config.slot_alpha)
        self.scales = [0.0, 0.0, 0.0]  # mean absolute residual per baseline
        self.shifts = [0.0, 0.0, 0.0]  # recent mean residual, in scales
        self.abs_means = [1.0, 1.0, 1.0]  # recent mean absolute residual, in scales
        self.record = 0.0
        self.hold = 0
        self.trend = 0  # -1 falling, 0 flat, 1 rising
        self.patterns = PatternMemory(
            config.pattern_length, config.pattern_bins, config.pattern_slots, config.warmup_points
        )
        # A mean of ~10 independent z-scores has a smaller spread; this restores unit variance.
        self._shift_norm = math.sqrt((2.0 - config.short_alpha) / config.short_alpha)

    @property
    def mean(self) -> float:
        return self.level

    @property
    def var(self) -> float:
        # Mean absolute deviation times sqrt(pi/2) is the standard deviation of a normal.
        spread = self.scales[0] * 1.2533
        return spread * spread  # inf rather than OverflowError for values near 1e308

    def observe(self, ts: float, value: float) -> tuple[Flag | None, int | None]:
        """Judge one point; return an anomaly flag, and the new trend when it just flipped."""
        count = self.count = self.count + 1
        if count == 1:
            self.level = self.fast = value
            self.daily.learn(self.daily.slot(ts), value)
            self.weekly.learn(self.weekly.slot(ts), value)
            self.patterns.observe(value, value)
            return None, None

        # This runs for every point of every series, so the small steps are inlined here and
        # in _learn (issue #5); each does the arithmetic of the method it replaced, in order.
        config = self.config
        day_slots, week_slots = config.day_slots, config.week_slots
        day_slot = int(ts % DAY * day_slots / DAY) % day_slots  # as SeasonalProfile.slot
        week_slot = int(ts % WEEK * week_slots / WEEK) % week_slots
        level = self.level
        daily = self.daily.means[day_slot]
        daily = level if daily != daily else daily  # NaN: a slot with no opinion yet
        weekly = self.weekly.means[week_slot]
        expected = (level, daily, daily if weekly != weekly else weekly)

        scales = self.scales
        best = 0
        if count > _MIN_JUDGED:
            best = 1 if scales[1] < scales[0] else 0
            best = 2 if scales[2] < scales[best] else best
        floor = config.scale_floor * self.spread + 1e-9 * (1.0 + abs(level))
        alpha = 1.0 / count
        alpha = config.level_alpha if config.level_alpha > alpha else alpha  # max(), faster

        surprises, z = self._judge(value, expected, best, floor, alpha)
        new_pattern = self.patterns.observe(value, expected[best])
        flag = self._gate(surprises, new_pattern, z, expected[best], best, floor)
        return flag, self._learn(value, floor, alpha, day_slot, week_slot)

    def _judge(
        self,
        value: float,
        expected: tuple[float, float, float],
        best: int,
        floor: float,
        alpha: float,
    ) -> tuple[tuple[float, float, float], float]:
        """Update each baseline's residual statistics; the best one's surprises and z."""
        config = self.config
        cap, short = config.z_cap, config.short_alpha
        clip = config.residual_clip if self.count > _MIN_JUDGED else math.inf
        scales, shifts, abs_means = self.scales, self.shifts, self.abs_means
        surprises, best_z = (0.0, 0.0, 0.0), 0.0
        # Conditional expressions rather than min()/max(): this loop runs three times a point.
        for index in (0, 1, 2):
            residual = value - expected[index]
            size = residual if residual >= 0.0 else -residual
            scale = scales[index] + floor
            z = residual / scale
            z = cap if z > cap else -cap if z < -cap else z
            abs_z = z if z >= 0.0 else -z
            shift = shifts[index] = shifts[index] + short * (z - shifts[index])
            spread = abs_means[index]
            spread += short * ((abs_z if abs_z < _ABS_Z_CAP else _ABS_Z_CAP) - spread)
            abs_means[index] = spread
            if index == best:
                best_z = z
                surprises = (
                    math.log1p(abs_z),
                    math.log1p(abs(shift) * self._shift_norm),
                    math.log1p(spread),
                )
            limit = clip * scale
            scales[index] += alpha * ((size if size < limit else limit) - scales[index])
        return surprises, best_z

    def _gate(
        self,
        surprises: tuple[float, float, float],
        new_pattern: bool | None,
        z: float,
        expected: float,
        best: int,
        floor: float,
    ) -> Flag | None:
        """Flag when the weighted surprise beats the floor and the series' record; keep the record.

        The record keeps the unweighted surprise: a familiar pattern still sets how noisy the series
        can be, and a new pattern must beat that.
        """
        config = self.config
        count = self.count
        spike, shift, variance = surprises
        surprise = shift if shift > spike else spike  # max(surprises), without the call
        surprise = variance if variance > surprise else surprise
        record = self.record
        if count > config.record_start:
            if surprise > record:
                self.record = surprise
            else:
                self.record = record * (1.0 - config.record_decay / count)

        if count <= config.warmup_points:
            return None
        if self.hold > 0:
            self.hold -= 1
            return None
        weight = config.familiar_weight if new_pattern is False else 1.0
        weighted = surprise * weight
        if weighted <= config.min_surprise or weighted <= record:
            return None

        self.hold = config.hold_points
        # The value had to leave this band for its weighted surprise to beat the floor and record.
        needed = max(config.min_surprise, record) / weight
        band = math.expm1(needed) * (self.scales[best] + floor)
        return Flag(
            detector=DETECTORS[surprises.index(surprise)],
            baseline=BASELINES[best],
            zscore=z,
            surprise=surprise,
            score=1.0 - 2.0 ** (-weighted / config.min_surprise),
            expected=expected,
            expected_low=expected - band,
            expected_high=expected + band,
            pattern=PATTERNS[new_pattern],
            pattern_novelty=self.patterns.novelty,
        )

    def _learn(
        self, value: float, floor: float, alpha: float, day_slot: int, week_slot: int
    ) -> int | None:
        """Move the level and the profiles towards the value; the new trend when it flipped."""
        config = self.config
        level = self.level
        residual = value - level
        self.spread += alpha * (abs(residual) - self.spread)
        # Clipping keeps one outlier from dragging the level; a lasting shift still moves it.
        if self.count > _MIN_JUDGED:
            limit = config.residual_clip * (self.scales[0] + floor)
            residual = residual if residual < limit else limit  # max(-limit, min(limit, r))
            residual = residual if residual > -limit else -limit
        level = self.level = level + alpha * residual
        short = config.short_alpha
        fast = self.fast = self.fast + (short if short > alpha else alpha) * (value - self.fast)

        # As SeasonalProfile.learn: a slot's first value is its mean.
        profile = self.daily
        mean = profile.means[day_slot]
        profile.means[day_slot] = value if mean != mean else mean + profile.alpha * (value - mean)
        profile = self.weekly
        mean = profile.means[week_slot]
        profile.means[week_slot] = value if mean != mean else mean + profile.alpha * (value - mean)

        if self.count < config.warmup_points:
            return None
        distance = (fast - level) / (self.scales[0] * 1.2533 + floor)
        trend = before = self.trend
        if trend == 0 and abs(distance) >= config.trend_enter:
            trend = 1 if distance > 0 else -1
        elif trend != 0 and abs(distance) <= config.trend_leave:
            trend = 0
        if trend == before:
            return None
        self.trend = trend
        return trend
