"""NAB's scoring rules on hand-made series: rows 0..999, one row per second."""

from __future__ import annotations

import math

import pytest

from bench.nab_scoring import (
    PROFILES,
    normalised,
    probation_rows,
    scaled_sigmoid,
    score_series,
    window_rows,
)

STANDARD, LOW_FP, LOW_FN = PROFILES
STAMPS = [float(row) for row in range(1000)]
WINDOW = [(400.0, 499.0)]  # rows 400..499: 100 rows wide


def test_probation_is_15_percent_capped_at_750_rows():
    assert [probation_rows(n) for n in (1000, 1127, 5000, 22695)] == [150, 169, 750, 750]


def test_window_rows_cover_the_timestamps_inside_inclusive():
    assert window_rows(STAMPS, [(400.0, 499.0), (600.5, 610.0)]) == [
        range(400, 500),
        range(601, 611),
    ]


def test_flag_at_the_left_edge_scores_one():
    result = score_series(STAMPS, WINDOW, [400.0], STANDARD)

    assert result.raw == pytest.approx(1.0)
    assert (result.detected, result.false_positives) == (1, 0)


def test_no_flag_costs_the_miss_weight():
    assert score_series(STAMPS, WINDOW, [], STANDARD).raw == -1.0
    assert score_series(STAMPS, WINDOW, [], LOW_FN).raw == -2.0


def test_flag_at_the_right_edge_scores_almost_nothing():
    # Position -1/100, just inside the right edge: the sigmoid is barely above zero.
    expected = (2 / (1 + math.exp(-0.05)) - 1) / (2 / (1 + math.exp(-5)) - 1)

    assert score_series(STAMPS, WINDOW, [499.0], STANDARD).raw == pytest.approx(expected)
    assert expected == pytest.approx(0.02533, abs=1e-5)


def test_only_the_earliest_flag_in_a_window_counts():
    early = score_series(STAMPS, WINDOW, [420.0], STANDARD).raw

    assert score_series(STAMPS, WINDOW, [420.0, 430.0, 490.0], STANDARD).raw == early
    assert early == pytest.approx(0.97711, abs=1e-5)


def test_false_positive_before_any_window_costs_the_full_weight():
    assert score_series(STAMPS, WINDOW, [300.0, 400.0], STANDARD).raw == pytest.approx(1 - 0.11)
    assert score_series(STAMPS, WINDOW, [300.0, 400.0], LOW_FP).raw == pytest.approx(1 - 0.22)


def test_false_positive_just_after_a_window_costs_little():
    # 10 rows past the window's last row, relative to its width minus one: 10 / 99.
    cost = 0.11 * scaled_sigmoid(10 / 99)
    result = score_series(STAMPS, WINDOW, [400.0, 509.0], STANDARD)

    assert result.raw == pytest.approx(1 + cost)
    assert cost == pytest.approx(-0.11 * 0.24729, abs=1e-6)
    assert result.false_positives == 1


def test_false_positive_far_after_a_window_costs_the_full_weight():
    # 400 rows past a 100-row window is more than three widths.
    assert score_series(STAMPS, WINDOW, [400.0, 899.0], STANDARD).raw == pytest.approx(0.89)


def test_flags_in_the_probation_period_are_ignored():
    assert score_series(STAMPS, WINDOW, [0.0, 149.0, 400.0], STANDARD).raw == pytest.approx(1.0)
    assert score_series(STAMPS, WINDOW, [150.0, 400.0], STANDARD).raw == pytest.approx(0.89)


def test_every_false_positive_of_a_burst_counts():
    burst = [600.0 + row for row in range(300, 310)]
    result = score_series(STAMPS, WINDOW, burst, STANDARD)

    assert result.false_positives == 10
    assert result.raw == pytest.approx(-1.0 - 10 * 0.11)


def test_normalised_maps_never_flagging_to_zero_and_perfect_to_one_hundred():
    assert normalised(-3.0, 3, STANDARD) == 0.0
    assert normalised(3.0, 3, STANDARD) == 100.0
    assert normalised(0.0, 3, STANDARD) == 50.0
    assert normalised(0.0, 3, LOW_FN) == pytest.approx(100 * 6 / 9)
