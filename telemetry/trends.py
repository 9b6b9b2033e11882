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
    dv = values[j] - values[i]
    dt = ts[j] - ts[i]
    s = float(np.sign(dv).sum())
    variance = (n * (n - 1) * (2 * n + 5) - _tie_term(values)) / 18.0
    p_value = _p_value(s, variance)

    spaced = dt > 0
    slope = float(np.median(dv[spaced] / dt[spaced])) if spaced.any() else 0.0
    tau = s / len(dv)
    direction = "flat"
    if p_value <= alpha and slope != 0.0:
        direction = "rising" if slope > 0 else "falling"
    return Trend(direction, slope, tau, p_value, n)


@lru_cache(maxsize=64)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k=1)


def _tie_term(values: np.ndarray) -> float:
    """The Mann–Kendall variance correction for groups of equal values."""
    _, counts = np.unique(values, return_counts=True)
    tied = counts[counts > 1].astype(np.float64)
    return float((tied * (tied - 1) * (2 * tied + 5)).sum())


def _p_value(s: float, variance: float) -> float:
    if variance <= 0 or s == 0:
        return 1.0
    # Continuity correction: S moves in steps of 2, so shrink it by one towards zero.
    z = (s - math.copysign(1.0, s)) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2.0))
