"""Pattern memory: has this series been seen doing what it does now?

The idea behind contextual detectors such as CAD OSE, at a constant cost per point. The last few
values, cut into bins of the series' own range, and the bin of the value the baseline expected form
the current pattern. A pattern seen before is familiar; one never seen is new. Regular spikes, a
daily dip or a sawtooth repeat their patterns and become familiar; a real change of behaviour
produces patterns the series has not shown yet.

The bins are fixed once, from the range of the first values: a scale that kept moving would turn one
pattern into several. Values outside that range fall in further bins. The memory is a fixed table
of 32-bit fingerprints in sets of two slots, so it never grows: a new pattern pushes out the less
recent of its set. A series that keeps producing new patterns thus forgets old ones and stays
"new", the safe side, while a series that repeats itself keeps its patterns.
"""

from __future__ import annotations

import math
from array import array

NOVELTY_ALPHA = 0.01  # about the last 100 patterns make the share of new ones
_PLACEHOLDER = 0.5  # not a bin (bins are integers): stands for the values before the range
_FAR_BIN = 1 << 1024  # beyond the bin of any finite position
_floor = math.floor


class PatternMemory:
    """The patterns one series has shown; `observe` each value in event-time order."""

    __slots__ = (
        "length",
        "bins",
        "sets",
        "warmup",
        "seen",
        "low",
        "high",
        "origin",
        "width",
        "recent",
        "table",
        "novelty",
    )

    def __init__(self, length: int, bins: int, slots: int, warmup: int) -> None:
        self.length = length
        self.bins = bins
        self.sets = max(1, slots // 2)  # two slots a set
        self.warmup = warmup
        self.seen = 0
        self.low = math.inf
        self.high = -math.inf
        self.origin = 0.0
        self.width = 0.0  # 0 until the first range is known
        self.recent: tuple[float, ...] = ()  # bins of the last `length - 1` values
        self.table = array("i")  # allocated with the bins: a short-lived series costs nothing
        self.novelty = 1.0  # the recent share of new patterns

    def observe(self, value: float, expected: float) -> bool | None:
        """Whether the pattern ending with this value is new; None while still learning."""
        width = self.width
        if not width:
            self._learn_range(value)
            return None

        # Inlined rather than a helper: this runs for every point of every series.
        origin = self.origin
        position = (value - origin) / width
        expected_position = (expected - origin) / width
        try:
            pattern = self.recent + (_floor(position), _floor(expected_position))
        except OverflowError:  # so far out of the first range that the division overflowed
            pattern = self.recent + (_far_bin(position), _far_bin(expected_position))
        self.recent = pattern[1:-1]  # the last `length - 1` value bins

        # Two slots per set, the most recent first: two patterns that share a set, such as a
        # series' usual pattern and its repeated spike, are both kept.
        fingerprint = hash(pattern)
        first = fingerprint % self.sets * 2
        # Bits above the set's, never 0 (an empty slot); tuples of ints hash alike in any process.
        mark = (fingerprint >> 16) & 0x7FFF_FFFF | 1
        table = self.table
        recent = table[first]
        new = False
        if recent != mark:
            new = table[first + 1] != mark
            table[first + 1] = recent
            table[first] = mark
        self.novelty += NOVELTY_ALPHA * (new - self.novelty)
        return new

    def _learn_range(self, value: float) -> None:
        self.seen += 1
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value
        # A flat start has no range yet: keep learning until the series moves.
        if self.seen >= self.warmup and self.high > self.low:
            self.origin = self.low
            self.width = (self.high - self.low) / self.bins
            self.table = array("i", [0]) * (2 * self.sets)  # 0 marks an empty slot
            # Placeholder bins outside any real range: the first patterns count as new.
            self.recent = (_PLACEHOLDER,) * (self.length - 1)


def _far_bin(position: float) -> int:
    """The bin of a position whose division overflowed to infinity: the farthest one each way."""
    return _FAR_BIN if position > 0 else -_FAR_BIN
