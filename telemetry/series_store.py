"""Recent points of every series in fixed-size rings, for charts, trends and co-movement.

Each series keeps its last `capacity` points as two NumPy arrays, so memory is capacity × 16
bytes per series, whatever the rate. Points arrive in event-time order from the analyzer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from telemetry.points import SeriesKey


class Ring:
    __slots__ = ("ts", "values", "written")

    def __init__(self, capacity: int) -> None:
        self.ts = np.empty(capacity, dtype=np.float64)
        self.values = np.empty(capacity, dtype=np.float64)
        self.written = 0

    def append(self, ts: Sequence[float], values: Sequence[float]) -> None:
        capacity = len(self.ts)
        count = len(ts)
        if count == 1:
            # Most series bring one point a batch: an item store is a third of a slice's cost.
            start = self.written % capacity
            self.ts[start] = ts[0]
            self.values[start] = values[0]
            self.written += 1
            return
        if count > capacity:
            skipped = count - capacity
            ts, values = ts[skipped:], values[skipped:]
            self.written += skipped
            count = capacity

        # Slices, not index arrays: a batch brings most series one or two points.
        start = self.written % capacity
        first = min(count, capacity - start)
        self.ts[start : start + first] = ts[:first]
        self.values[start : start + first] = values[:first]
        if first < count:
            self.ts[: count - first] = ts[first:]
            self.values[: count - first] = values[first:]
        self.written += count

    def recent(self, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The kept points, oldest first, at most the last `limit`."""
        capacity = len(self.ts)
        held = min(self.written, capacity)
        count = held if limit is None else min(limit, held)
        slots = (self.written - count + np.arange(count)) % capacity
        return self.ts[slots], self.values[slots]


class SeriesStore:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._rings: dict[SeriesKey, Ring] = {}

    def __len__(self) -> int:
        return len(self._rings)

    def append(self, key: SeriesKey, ts: Sequence[float], values: Sequence[float]) -> None:
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = Ring(self.capacity)
        ring.append(ts, values)

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
        ring = self._rings[key]
        return float(ring.ts[(ring.written - 1) % self.capacity]) if ring.written else -math.inf


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
    sums = np.add.reduceat(values, firsts)
    lows = np.minimum.reduceat(values, firsts)
    highs = np.maximum.reduceat(values, firsts)
    return [
        {"start": start + int(b) * width, "count": int(c), "min": lo, "mean": s / c, "max": hi}
        for b, c, s, lo, hi in zip(
            index[firsts].tolist(),
            counts.tolist(),
            sums.tolist(),
            lows.tolist(),
            highs.tolist(),
            strict=True,
        )
    ]
