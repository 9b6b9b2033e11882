"""The per-series online detector on generated series with known incidents."""

from __future__ import annotations

import dataclasses
import random
import sys

import pytest

from telemetry.detector_patterns import PatternMemory
from telemetry.detectors import DEFAULT_CONFIG, SeriesDetector

DAY = 86_400
MIDNIGHT = 1_699_920_000  # 2023-11-14T00:00:00Z


def _flags(stamps: list[float], values: list[float], **overrides) -> list[tuple[int, object]]:
    detector = SeriesDetector(dataclasses.replace(DEFAULT_CONFIG, **overrides))
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


def _regular_spikes(plateau_at: int | None = None) -> tuple[list[float], list[float]]:
    """A quiet level with the same spike every 100 points; optionally a 3-point plateau."""
    rng = random.Random(5)
    values = [10 + rng.gauss(0, 0.2) for _ in range(4000)]
    for index in range(50, 4000, 100):
        values[index] = 30.0
    if plateau_at is not None:
        values[plateau_at : plateau_at + 3] = [30.0] * 3
    return [1e9 + 60.0 * index for index in range(4000)], values


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


def test_a_spike_that_keeps_repeating_stops_being_flagged():
    stamps, values = _regular_spikes()

    found = [(index, flag.detector, flag.pattern) for index, flag in _flags(stamps, values)]
    # Without the pattern memory's weight, each spike beats the relaxed record again in time.
    unweighted = [index for index, _ in _flags(stamps, values, familiar_weight=1.0)]

    # Before the record starts (point 500) only the hold thins the flags out.
    assert found == [
        (150, "spike", "new"),
        (251, "level_shift", "new"),
        (352, "level_shift", "familiar"),
        (453, "level_shift", "familiar"),
    ]
    assert unweighted == [150, 251, 352, 453] + list(range(650, 3700, 200))


def test_a_new_pattern_among_familiar_spikes_is_flagged_as_new():
    stamps, values = _regular_spikes(plateau_at=3020)

    late = [(i, f) for i, f in _flags(stamps, values) if i > DEFAULT_CONFIG.record_start]

    # Its first point looks like every spike; by the third the shape is one never seen.
    assert [(i, f.detector, f.pattern) for i, f in late] == [(3022, "level_shift", "new")]
    assert late[0][1].pattern_novelty == pytest.approx(0.0200, abs=1e-4)


def test_patterns_are_learning_until_the_first_range_is_known():
    memory = PatternMemory(length=3, bins=4, slots=64, warmup=4)

    flat = [memory.observe(5.0, 5.0) for _ in range(10)]  # no range yet: keeps learning
    moved = memory.observe(6.0, 5.0)  # the range 5..6 is known from here
    first = memory.observe(8.0, 5.0)

    assert flat + [moved] == [None] * 11
    assert first is True
    assert (memory.origin, memory.width, len(memory.table)) == (5.0, 0.25, 64)


def test_a_repeated_pattern_is_new_once_then_familiar():
    memory = PatternMemory(length=3, bins=4, slots=64, warmup=4)
    for value in (0.0, 1.0, 2.0, 3.0):
        memory.observe(value, 1.5)  # the range 0..3 in bins of 0.75

    cycle = [memory.observe(value, 1.5) for value in (0.0, 3.0) * 4]
    step = memory.observe(1.5, 1.5)  # a value in a bin the cycle never visited
    elsewhere = [memory.observe(value, 0.0) for value in (0.0, 3.0) * 2]

    # Two patterns fill the window from the placeholders; then two repeat for ever.
    assert cycle == [True] * 4 + [False] * 4
    assert step is True
    # The same values against another expected value are another pattern.
    assert elsewhere == [True] * 4


def test_a_full_pattern_table_forgets_rather_than_calls_anything_familiar():
    memory = PatternMemory(length=1, bins=4, slots=2, warmup=2)  # one set of two slots
    memory.observe(0.0, 0.0)
    memory.observe(4.0, 0.0)

    two = [memory.observe(value, 0.0) for value in (0.0, 4.0) * 3]
    three = [memory.observe(value, 0.0) for value in (0.0, 2.0, 4.0) * 3]
    latest = memory.observe(2.0, 0.0)

    # Two patterns share the set and stay; a third pushes out the older, so none is familiar.
    assert two == [True, True] + [False] * 4
    assert three == [False, True, True] + [True] * 6
    assert latest is False  # the set holds the two latest patterns


def test_a_value_far_outside_the_first_range_still_gets_a_pattern():
    memory = PatternMemory(length=2, bins=4, slots=64, warmup=2)
    memory.observe(0.0, 0.0)
    memory.observe(1e-300, 0.0)

    # The division overflows to infinity: the value takes the farthest bin instead.
    assert [memory.observe(value, 0.0) for value in (1e300, -1e300, 1e300, -1e300)] == [
        True,
        True,
        True,
        False,
    ]


def test_the_pattern_table_never_grows_however_many_patterns_it_sees():
    memory = PatternMemory(length=4, bins=12, slots=512, warmup=150)
    rng = random.Random(11)
    for _ in range(1_000):
        memory.observe(rng.uniform(0, 100), 50.0)
    size = sys.getsizeof(memory.table)

    for _ in range(100_000):
        memory.observe(rng.uniform(-1e6, 1e6), rng.uniform(0, 100))

    assert (len(memory.table), sys.getsizeof(memory.table), len(memory.recent)) == (512, size, 3)
    assert memory.novelty == pytest.approx(1.0, abs=1e-6)  # nothing repeats, nothing is familiar


def test_memory_stays_constant_as_the_series_grows():
    detector = SeriesDetector()
    stamps, values = _office_hours(days=2, quiet_day=-1)
    # Past the warm-up, once the pattern table exists.
    for ts, value in zip(stamps[:200], values[:200], strict=True):
        detector.observe(ts, value)
    early = _state_size(detector)

    for _ in range(5):
        for ts, value in zip(stamps, values, strict=True):
            detector.observe(ts + 5 * DAY, value)

    assert _state_size(detector) == early
    assert len(detector.daily.means) == DEFAULT_CONFIG.day_slots
    assert len(detector.weekly.means) == DEFAULT_CONFIG.week_slots
    assert len(detector.patterns.table) == DEFAULT_CONFIG.pattern_slots
    assert len(detector.patterns.recent) == DEFAULT_CONFIG.pattern_length - 1


def _state_size(detector: SeriesDetector) -> int:
    parts = [detector.scales, detector.shifts, detector.abs_means, detector.patterns.table]
    for profile in (detector.daily, detector.weekly):
        parts.append(profile.means)
    return sum(sys.getsizeof(part) for part in parts)
