"""The robustness check's pieces on one generated series with one labelled spike."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench import nab_sensitivity
from bench.nab import Series

START = 1e9
STEP = 60.0


@pytest.fixture
def one_series():
    rng = random.Random(3)
    values = [50 + rng.gauss(0, 2) for _ in range(2000)]
    values[1500] = 80.0
    stamps = [START + STEP * row for row in range(2000)]
    window = (stamps[1400], stamps[1599])  # 200 rows, the spike in its middle
    nab_sensitivity._series[:] = [Series("demo/spike.csv", stamps, values, [window], [])]
    yield stamps
    nab_sensitivity._series.clear()


def test_a_parameter_moves_by_a_fraction_and_integers_stay_integers():
    assert nab_sensitivity.moved("min_surprise", 0.1) == {"min_surprise": 2.2}
    assert nab_sensitivity.moved("hold_points", -0.2) == {"hold_points": 80}
    assert nab_sensitivity.moved("level_alpha", 0.2) == {"level_alpha": 0.012}


def test_the_spike_is_the_only_flag_and_scores_as_a_mid_window_hit(one_series):
    assert nab_sensitivity.flags_of(0, {}) == [one_series[1500]]

    with ThreadPoolExecutor(1) as pool:
        raws = nab_sensitivity.raw_scores(pool, {})
    standard, low_fp, low_fn = nab_sensitivity.summarise(raws, [0])

    # Half-way into the window: (2 / (1 + e^-2.5) - 1) / (2 / (1 + e^-5) - 1) = 0.85979.
    assert (standard, low_fp) == (pytest.approx(92.990, abs=1e-3),) * 2
    assert low_fn == pytest.approx(100 * (0.85979 + 2) / 3, abs=1e-3)


def test_a_floor_above_the_spike_misses_the_window(one_series):
    assert nab_sensitivity.flags_of(0, {"min_surprise": 4.0}) == []
