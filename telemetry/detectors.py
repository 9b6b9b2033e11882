"""Online detectors for one series: z-score, spike and trend, in constant memory.

Every decision about a point uses that point and earlier ones only. The baseline is an
exponentially weighted mean and variance; a flagged point enters it clipped, so one outlier does
not widen the band enough to hide the next, while a lasting level shift is still absorbed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    warmup_points: int = 60  # no flags until the baseline has seen this many points
    baseline_alpha: float = 0.01  # about the last 100 points shape the baseline
    fast_alpha: float = 0.1  # the short average compared against the baseline for trends
    z_threshold: float = 5.0
    spike_ratio: float = 8.0  # a step this many times the usual step size is a spike ...
    spike_min_z: float = 3.0  # ... when it also leaves the usual band this far
    clip_z: float = 3.0  # flagged or extreme points enter the baseline clipped to this band
    hold_points: int = 100  # after a flag, the series stays quiet this long: one incident
    trend_enter: float = 3.0  # fast-vs-baseline distance, in baseline deviations
    trend_leave: float = 1.0


DEFAULT_CONFIG = DetectorConfig()


@dataclass(slots=True)
class Flag:
    detector: str  # "zscore" or "spike"
    zscore: float
    score: float  # in [0, 1]
    expected_low: float
    expected_high: float


class SeriesDetector:
    """The running state of one series; `observe` each value in event-time order."""

    __slots__ = ("config", "count", "mean", "var", "fast", "last", "step", "hold", "trend")

    def __init__(self, config: DetectorConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self.count = 0
        self.mean = 0.0
        self.var = 0.0
        self.fast = 0.0
        self.last = 0.0
        self.step = 0.0  # average absolute change between consecutive points
        self.hold = 0
        self.trend = 0  # -1 falling, 0 flat, 1 rising

    def observe(self, value: float) -> tuple[Flag | None, int | None]:
        """Judge one value; return an anomaly flag, and the new trend when it just flipped."""
        config = self.config
        if self.count == 0:
            self._first(value)
            return None, None

        std = math.sqrt(self.var) + _noise_floor(self.mean)
        z = (value - self.mean) / std
        step = abs(value - self.last)
        flag = self._judge(value, z, std, step) if self.count >= config.warmup_points else None

        self._learn(value, z, std, step)
        return flag, self._trend_flip(std)

    def _first(self, value: float) -> None:
        self.count = 1
        self.mean = self.fast = self.last = value

    def _judge(self, value: float, z: float, std: float, step: float) -> Flag | None:
        config = self.config
        if self.hold > 0:
            self.hold -= 1
            return None

        spike = step > config.spike_ratio * (self.step + _noise_floor(value)) and (
            abs(z) >= config.spike_min_z
        )
        if abs(z) < config.z_threshold and not spike:
            return None

        self.hold = config.hold_points
        band = config.z_threshold * std
        return Flag(
            detector="zscore" if abs(z) >= config.z_threshold else "spike",
            zscore=z,
            score=_score(z, config.spike_min_z if spike else config.z_threshold),
            expected_low=self.mean - band,
            expected_high=self.mean + band,
        )

    def _learn(self, value: float, z: float, std: float, step: float) -> None:
        config = self.config
        self.count += 1
        self.last = value
        alpha = max(1.0 / self.count, config.baseline_alpha)

        # Clipping keeps a single outlier from blowing up the variance it is judged against.
        if self.count > config.warmup_points and abs(z) > config.clip_z:
            value = self.mean + math.copysign(config.clip_z * std, z)
        delta = value - self.mean
        self.mean += alpha * delta
        self.var = (1.0 - alpha) * (self.var + alpha * delta * delta)

        self.fast += max(alpha, config.fast_alpha) * (value - self.fast)
        self.step += alpha * (step - self.step)

    def _trend_flip(self, std: float) -> int | None:
        config = self.config
        if self.count < config.warmup_points:
            return None

        distance = (self.fast - self.mean) / std
        trend = self.trend
        if trend == 0 and abs(distance) >= config.trend_enter:
            trend = 1 if distance > 0 else -1
        elif trend != 0 and abs(distance) <= config.trend_leave:
            trend = 0
        if trend == self.trend:
            return None
        self.trend = trend
        return trend


def _noise_floor(level: float) -> float:
    # A perfectly flat series has zero variance; this keeps z finite without hiding real change.
    return 1e-9 + 1e-6 * abs(level)


def _score(z: float, threshold: float) -> float:
    """0.5 at the threshold, rising towards 1 as the point leaves the band further."""
    return 1.0 - 2.0 ** (-((z / threshold) ** 2))
