"""The processor: turns a batch of points into columns, canonical units and series in event time.

Timestamps are already UTC Unix seconds (points.py normalises every accepted form). Here values
are converted to canonical units, non-finite values are set aside with a reason, and each point
is assigned to a series within the cardinality bounds. Each series' points come out ordered by
their own timestamps, so the analyzer sees backfilled history in the order it happened.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain, count
from operator import itemgetter
from typing import Any

import numpy as np

from telemetry.cardinality import CardinalityLimit
from telemetry.point_batches import series_keys
from telemetry.points import SeriesKey, analysed_value, iso
from telemetry.units import CONVERSIONS

logger = logging.getLogger(__name__)

RECENT_REJECTIONS = 100


@dataclass(slots=True)
class ProcessedBatch:
    points: list[dict[str, Any]]
    ts: np.ndarray  # float64 Unix seconds, UTC
    values: np.ndarray  # float64 in canonical units, NaN where a point has no number to analyse
    series: list[tuple[SeriesKey, np.ndarray]]  # each series with its point indices, by time


class Processor:
    def __init__(self, max_series: int, max_values_per_key: int) -> None:
        self.cardinality = CardinalityLimit(max_series, max_values_per_key)
        self.non_finite = 0
        self.rejections: deque[dict[str, Any]] = deque(maxlen=RECENT_REJECTIONS)

    @property
    def counters(self) -> dict[str, int]:
        return {
            "non_finite": self.non_finite,
            "overflow_points": self.cardinality.overflow_points,
            "series_tracked": len(self.cardinality),
        }

    def process(self, points: list[dict[str, Any]]) -> ProcessedBatch:
        _to_canonical_units(points)
        points = self._finite_only(points)

        # Column by column in C where it can be: this runs for every point the service takes.
        ts = np.fromiter(map(_event_time, points), dtype=np.float64, count=len(points))
        values = np.array(_analysed_values(points), dtype=np.float64)
        keys = self.cardinality.admit_all(series_keys(points))
        for point, key in zip(points, keys, strict=True):
            point["series"] = key
        return ProcessedBatch(points, ts, values, _series(keys, ts))

    def _finite_only(self, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Points whose numbers are finite; the others are counted and their reason kept."""
        if _all_small(map(_value, points), map(_duration, points)):
            return points
        numbers = np.fromiter(
            (_or_nan(point["value"], 0.0) + _or_nan(point["duration_ms"], 0.0) for point in points),
            dtype=np.float64,
            count=len(points),
        )
        # A missing number counts as 0 here, so only a NaN or an infinity makes the sum non-finite.
        bad = np.flatnonzero(~np.isfinite(numbers))
        if len(bad) == 0:
            return points

        for index in bad.tolist():
            self._reject(points[index])
        keep = np.ones(len(points), dtype=bool)
        keep[bad] = False
        return [point for point, kept in zip(points, keep.tolist(), strict=True) if kept]

    def _reject(self, point: dict[str, Any]) -> None:
        value = point["value"]
        field = "value" if value is not None and not np.isfinite(value) else "duration_ms"
        reason = f"{field}: must be a finite number, got {point[field]!r}"
        if self.non_finite == 0:
            logger.warning("Rejecting a non-finite point of %s: %s", point["name"], reason)
        self.non_finite += 1
        self.rejections.append(
            {
                "service": point["service"],
                "name": point["name"],
                "timestamp": iso(point["ts"]),
                "reason": reason,
            }
        )


def _to_canonical_units(points: list[dict[str, Any]]) -> None:
    if CONVERSIONS.keys().isdisjoint(map(_unit, points)):  # no unit to convert: most batches
        return
    for point in points:
        unit = point["unit"]
        if unit is None or point["value"] is None:
            continue
        conversion = CONVERSIONS.get(unit)
        if conversion is None:
            continue
        point["unit"], factor = conversion
        if factor != 1.0:
            point["value"] = point["value"] * factor


def _series(keys: list[SeriesKey], ts: np.ndarray) -> list[Any]:
    """Each series with the indices of its points, by time; series in order of first point."""
    unique = dict.fromkeys(keys)
    if len(unique) == len(keys):  # one point per series, as in most batches: nothing to sort
        return list(zip(keys, np.arange(len(keys)).reshape(-1, 1), strict=True))
    code_of = dict(zip(unique, count()))
    codes = np.fromiter(map(code_of.__getitem__, keys), dtype=np.int64, count=len(keys))
    return _group(codes, ts, list(code_of))


def _group(codes: np.ndarray, ts: np.ndarray, keys: list[SeriesKey]) -> list[Any]:
    if len(codes) == 0:
        return []

    # A stable sort by (series, time) keeps equal timestamps in arrival order.
    order = np.lexsort((ts, codes))
    sorted_codes = codes[order]
    bounds = [0, *(np.flatnonzero(np.diff(sorted_codes)) + 1).tolist(), len(order)]
    firsts = sorted_codes[bounds[:-1]].tolist()
    # Slices of one array: far cheaper than np.split when a batch holds a thousand series.
    return [
        (keys[code], order[start:end])
        for code, start, end in zip(firsts, bounds[:-1], bounds[1:], strict=True)
    ]


def _analysed_values(points: list[dict[str, Any]]) -> list[float | None]:
    """`analysed_value` of each point; None where there is nothing to analyse."""
    values = list(map(_value, points))
    if None in values and "trace" in set(map(_type, points)):
        return list(map(analysed_value, points))
    return values


def _all_small(*columns: Iterator[float | None]) -> bool:
    """Whether the sum of the magnitudes of every number in the columns is finite: then each
    number is finite, and so is any sum of some of them."""
    return math.isfinite(sum(map(abs, filter(None, chain.from_iterable(columns)))))


def _or_nan(value: float | None, default: float = np.nan) -> float:
    return default if value is None else value


_event_time, _value, _duration = itemgetter("ts"), itemgetter("value"), itemgetter("duration_ms")
_unit, _type = itemgetter("unit"), itemgetter("type")
