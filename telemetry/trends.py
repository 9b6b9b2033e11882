"""Trends over a bounded recent window: Theil–Sen slope and the Mann–Kendall test.

Both are rank-based, so a few outliers neither fake nor hide a trend. The window is bounded
(`window` points), which keeps the per-series memory and the O(n²) pair count constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

MIN_POINTS = 10


@dataclass(frozen=True, slots=True)
class Trend:
    direction: str  # rising, falling or flat
    slope: float  # value units per second (Theil–Sen)
    tau: float  # Kendall's tau in [-1, 1]
    p_value: float  # two-sided, Mann–Kendall with the normal approximation
    points: int


def trend(ts: np.ndarray, values: np.ndarray, alpha: float) -> Trend | None:
    """The trend of points ordered by time, or None with too few points to say."""
    n = len(values)
    if n < MIN_POINTS:
        return None

    i, j = _pairs(n)
    # Values near 1e308 overflow to inf here, whose sign is still right; no warning for that.
    with np.errstate(over="ignore"):
        dv = values.take(j) - values.take(i)
    s = float(np.add.reduce(np.sign(dv)))
    # Only equal values make a difference of 0 (and a NaN makes S NaN): else no ties to count.
    ties = _tie_term(values) if np.count_nonzero(dv) < len(dv) or s != s else 0.0
    variance = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    p_value = _p_value(s, variance)

    slope = _median_slope(ts, dv, i, j)
    tau = s / len(dv)
    direction = "flat"
    if p_value <= alpha and slope != 0.0:
        direction = "rising" if slope > 0 else "falling"
    return Trend(direction, slope, tau, p_value, n)


@lru_cache(maxsize=64)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k=1)


def _median_slope(ts: np.ndarray, dv: np.ndarray, i: np.ndarray, j: np.ndarray) -> float:
    """Theil–Sen: the median slope over the pairs that are apart in time."""
    dt = ts.take(j) - ts.take(i)
    spaced = dt > 0
    if np.count_nonzero(spaced) < len(dt):
        if not spaced.any():
            return 0.0
        dv, dt = dv[spaced], dt[spaced]
    slopes = dv / dt

    # What np.median does, without its generic checks: partition at the same places, then the
    # mean (sum over count) of the middle one or two.
    size = len(slopes)
    half = size // 2
    middle = [half - 1, half, -1] if size % 2 == 0 else [half, -1]
    slopes.partition(middle)
    if slopes[-1] != slopes[-1]:  # NaN sorts last; np.median answers NaN then
        return math.nan
    return float(np.add.reduce(slopes[middle[0] : half + 1])) / (half + 1 - middle[0])


def _tie_term(values: np.ndarray) -> float:
    """The Mann–Kendall variance correction for groups of equal values."""
    ordered = np.sort(values)
    if ordered[-1] != ordered[-1]:  # NaN sorts last; np.unique counts all NaNs as one value
        _, counts = np.unique(values, return_counts=True)
        return _tied_pairs_term(counts)
    # Where each run of equal values starts, and the end: the runs np.unique would count.
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1], [True])))
    return _tied_pairs_term(starts[1:] - starts[:-1])


def _tied_pairs_term(counts: np.ndarray) -> float:
    tied = counts[counts > 1].astype(np.float64)
    return float(np.add.reduce(tied * (tied - 1) * (2 * tied + 5)))


def _p_value(s: float, variance: float) -> float:
    if variance <= 0 or s == 0:
        return 1.0
    # Continuity correction: S moves in steps of 2, so shrink it by one towards zero.
    z = (s - math.copysign(1.0, s)) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2.0))
