"""The per-series online detector on generated series with known incidents."""

from __future__ import annotations

import random
import sys

import pytest

from telemetry.detectors import DEFAULT_CONFIG, SeriesDetector

DAY = 86_400
MIDNIGHT = 1_699_920_000  # 2023-11-14T00:00:00Z


def _flags(stamps: list[float], values: list[float]) -> list[tuple[int, object]]:
    detector = SeriesDetector()
    found = []
    for index, (ts, value) in enumerate(zip(stamps, values, strict=True)):
        flag, _ = detector.observe(ts, value)
        if flag is not None:
            found.append((index, flag))
    return found


def _noisy_level_with_spike_and_shift() -> tuple[list[float], list[float]]:
    rng = random.Random(3)
    values = [50 + rng.gauss(0, 2) for _ in range(2000)]
    values[1200] = 80.0
    for index in range(1600, 2000):
        values[index] += 15
    return [1e9 + 60.0 * index for index in range(2000)], values


def _office_hours(days: int, quiet_day: int) -> tuple[list[float], list[float]]:
    """5-minute points, high from 08:00 to 18:00 UTC, except on `quiet_day`."""
    rng = random.Random(7)
    stamps, values = [], []
    for index in range(days * 288):
        ts = MIDNIGHT + 300 * index
        busy = 8 <= (ts % DAY) / 3600 < 18 and index // 288 != quiet_day
        stamps.append(float(ts))
        values.append((80.0 if busy else 20.0) + rng.gauss(0, 1))
    return stamps, values


def test_spike_and_level_shift_are_flagged_once_each_at_their_own_points():
    stamps, values = _noisy_level_with_spike_and_shift()

    found = [(index, flag.detector, flag.baseline) for index, flag in _flags(stamps, values)]

    # The shift is a level shift once the recent residuals add up: 6 points after it began.
    assert found == [(1200, "spike", "level"), (1606, "level_shift", "weekly")]


def test_a_flag_explains_itself():
    stamps, values = _noisy_level_with_spike_and_shift()

    index, flag = _flags(stamps, values)[0]

    assert index == 1200
    assert flag.expected_low < flag.expected < flag.expected_high < values[1200]
    assert flag.expected == pytest.approx(50.0, abs=1.0)
    assert 0.5 < flag.score < 1.0
    assert flag.surprise > DEFAULT_CONFIG.min_surprise
    assert flag.zscore > 0


def test_a_missing_daily_rise_is_flagged_against_the_daily_profile():
    stamps, values = _office_hours(days=14, quiet_day=10)

    after_warmup = [(i, f) for i, f in _flags(stamps, values) if i > DEFAULT_CONFIG.record_start]

    assert [(i, f.detector, f.baseline) for i, f in after_warmup] == [(2976, "spike", "daily")]
    assert (2976 // 288, 2976 % 288 * 5 / 60) == (10, 8.0)  # day 10, 08:00: the rise that failed
    assert after_warmup[0][1].expected == pytest.approx(80.0, abs=1.0)


def test_a_flag_depends_only_on_the_point_and_earlier_ones():
    stamps, values = _noisy_level_with_spike_and_shift()

    full = _flags(stamps, values)
    prefix = _flags(stamps[:1201], values[:1201])

    assert [index for index, _ in prefix] == [index for index, _ in full if index <= 1200] == [1200]


def test_a_lasting_incident_is_one_anomaly():
    values = [50.0 + (i % 5) for i in range(600)] + [500.0] * 300
    stamps = [1e9 + 60.0 * index for index in range(900)]

    assert [index for index, _ in _flags(stamps, values)] == [600]


def test_a_flat_series_raises_nothing():
    assert _flags([1e9 + 60.0 * i for i in range(3000)], [45.0] * 3000) == []


def test_memory_stays_constant_as_the_series_grows():
    detector = SeriesDetector()
    stamps, values = _office_hours(days=2, quiet_day=-1)
    for ts, value in zip(stamps[:100], values[:100], strict=True):
        detector.observe(ts, value)
    early = _state_size(detector)

    for _ in range(5):
        for ts, value in zip(stamps, values, strict=True):
            detector.observe(ts + 5 * DAY, value)

    assert _state_size(detector) == early
    assert len(detector.daily.means) == DEFAULT_CONFIG.day_slots
    assert len(detector.weekly.means) == DEFAULT_CONFIG.week_slots


def _state_size(detector: SeriesDetector) -> int:
    parts = [detector.scales, detector.shifts, detector.abs_means]
    for profile in (detector.daily, detector.weekly):
        parts.append(profile.means)
    return sum(sys.getsizeof(part) for part in parts)
