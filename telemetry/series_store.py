"""Recent points of every series in fixed-size rings, for charts, trends and co-movement.

Each series keeps its last `capacity` points in two arrays of doubles, so memory is at most
capacity × 16 bytes per series, whatever the rate; a young series holds only what it has seen so
far. Points arrive in event-time order from the analyzer.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from telemetry.points import SeriesKey


class Ring:
    """A series' last `capacity` points: appended until full, then overwritten oldest first.

    array("d") rather than NumPy: most series bring one point a batch, and an item store into an
    array costs a third of one into an ndarray (issue #5).
    """

    __slots__ = ("capacity", "ts", "values", "written")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.ts = array("d")
        self.values = array("d")
        self.written = 0

    def append(self, ts: Sequence[float], values: Sequence[float]) -> None:
        for stamp, value in zip(ts, values, strict=True):
            self.add(stamp, value)

    def add(self, ts: float, value: float) -> None:
        written = self.written
        self.written = written + 1
        if written >= self.capacity:
            slot = written % self.capacity
            self.ts[slot] = ts
            self.values[slot] = value
            return
        self.ts.append(ts)
        self.values.append(value)
        if written + 1 == self.capacity:
            # Full: drop the room that appends keep spare; from here on it only overwrites.
            self.ts, self.values = array("d", self.ts), array("d", self.values)

    def recent(self, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The kept points, oldest first, at most the last `limit`."""
        return self._oldest_first(self.ts, limit), self._oldest_first(self.values, limit)

    def last_ts(self) -> float:
        return self.ts[(self.written - 1) % self.capacity] if self.written else -math.inf

    def _oldest_first(self, column: array, limit: int | None) -> np.ndarray:
        held = len(column)
        count = held if limit is None else max(0, min(limit, held))
        # Copies, never views: an array with a view of its buffer could not grow.
        buffer = np.frombuffer(column, dtype=np.float64) if held else np.empty(0)
        end = self.written % held if self.written > held else held
        if count <= end:
            return buffer[end - count : end].copy()
        return np.concatenate((buffer[held - (count - end) :], buffer[:end]))


class SeriesStore:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._rings: dict[SeriesKey, Ring] = {}

    def __len__(self) -> int:
        return len(self._rings)

    def append(self, key: SeriesKey, ts: Sequence[float], values: Sequence[float]) -> None:
        self.ring(key).append(ts, values)

    def ring(self, key: SeriesKey) -> Ring:
        """The series' ring, made empty on first use; the analyzer keeps it at hand."""
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = Ring(self.capacity)
        return ring

    def recent(self, key: SeriesKey, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        ring = self._rings.get(key)
        if ring is None:
            empty = np.empty(0, dtype=np.float64)
            return empty, empty
        return ring.recent(limit)

    def matching(self, service: str | None, name: str | None) -> Iterator[SeriesKey]:
        for key in self._rings:
            if (service is None or key[0] == service) and (name is None or key[1] == name):
                yield key

    def last_seen(self, key: SeriesKey) -> float:
        return self._rings[key].last_ts()


def downsample(
    ts: np.ndarray,
    values: np.ndarray,
    since: float | None,
    until: float | None,
    buckets: int,
    step: float | None = None,
) -> list[dict[str, Any]]:
    """Points in [since, until] in at most `buckets` equal buckets: start, count, min, mean, max.

    `step` asks for a bucket width in seconds; it is widened when it would need more buckets.
    """
    keep = np.ones(len(ts), dtype=bool)
    if since is not None:
        keep &= ts >= since
    if until is not None:
        keep &= ts <= until
    ts, values = ts[keep], values[keep]
    if len(ts) == 0:
        return []

    order = np.argsort(ts, kind="stable")
    ts, values = ts[order], values[order]
    start = since if since is not None else float(ts[0])
    end = until if until is not None else float(ts[-1])
    width = max((end - start) / buckets, step or 0.0)
    if width <= 0:
        width = 1.0
    if step:
        # Whole steps, so buckets fall on the same boundaries call after call.
        width = math.ceil(width / step) * step
        start = math.floor(start / step) * step

    index = np.minimum(((ts - start) // width).astype(np.int64), buckets - 1)
    firsts = np.flatnonzero(np.r_[True, np.diff(index) != 0])
    counts = np.diff(np.r_[firsts, len(index)])
    means = _means(values, firsts, counts)
    lows = np.minimum.reduceat(values, firsts)
    highs = np.maximum.reduceat(values, firsts)
    return [
        {"start": start + int(b) * width, "count": int(c), "min": lo, "mean": m, "max": hi}
        for b, c, m, lo, hi in zip(
            index[firsts].tolist(),
            counts.tolist(),
            means.tolist(),
            lows.tolist(),
            highs.tolist(),
            strict=True,
        )
    ]


def _means(values: np.ndarray, firsts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each bucket's mean; a bucket whose sum overflows (values near 1.8e308) is summed in
    shares of its count instead, which cannot."""
    with np.errstate(over="ignore"):  # an overflow is what the loop below mends
        means = np.add.reduceat(values, firsts) / counts
    for bucket in np.flatnonzero(~np.isfinite(means)).tolist():
        first, count = firsts[bucket], counts[bucket]
        means[bucket] = np.sum(values[first : first + count] / count)
    return means
