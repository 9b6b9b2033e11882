"""Seasonal profiles: the usual value of a series at each time of day or of week.

A profile keeps one exponentially weighted mean per slot of its period (48 half hours of a day,
84 two-hour slots of a week), 8 bytes a slot, so its memory is fixed however long the series runs.
Slots never seen yet hold NaN: they have no opinion and defer to a fallback prediction.
"""

from __future__ import annotations

import math
from array import array

DAY = 86_400.0
WEEK = 7 * DAY


class SeasonalProfile:
    __slots__ = ("period", "slots", "alpha", "means")

    def __init__(self, period: float, slots: int, alpha: float) -> None:
        self.period = period
        self.slots = slots
        self.alpha = alpha
        self.means = array("d", [math.nan]) * slots

    def slot(self, ts: float) -> int:
        """The slot of an instant; Python's modulo keeps it in range for any sign."""
        return int(ts % self.period * self.slots / self.period) % self.slots

    def expected(self, slot: int, fallback: float) -> float:
        mean = self.means[slot]
        return fallback if mean != mean else mean

    def learn(self, slot: int, value: float) -> None:
        mean = self.means[slot]
        self.means[slot] = value if mean != mean else mean + self.alpha * (value - mean)
