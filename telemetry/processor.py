"""The processor: turns a batch of points into columns and groups it by series in event time.

Each series' points come out ordered by their own timestamps, so the analyzer sees backfilled
history in the order it happened, whatever order it arrived in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from telemetry.points import SeriesKey, analysed_value, series_key


@dataclass(slots=True)
class ProcessedBatch:
    points: list[dict[str, Any]]
    ts: np.ndarray  # float64 Unix seconds, UTC
    values: np.ndarray  # float64, NaN where a point carries no number to analyse
    series: list[tuple[SeriesKey, np.ndarray]]  # each series with its point indices, by time


def process(points: list[dict[str, Any]]) -> ProcessedBatch:
    ts = np.fromiter((point["ts"] for point in points), dtype=np.float64, count=len(points))
    values = np.fromiter(
        (_or_nan(analysed_value(point)) for point in points), dtype=np.float64, count=len(points)
    )

    codes_by_key: dict[SeriesKey, int] = {}
    codes = np.empty(len(points), dtype=np.int64)
    for index, point in enumerate(points):
        key = series_key(point)
        point["series"] = key
        codes[index] = codes_by_key.setdefault(key, len(codes_by_key))

    return ProcessedBatch(points, ts, values, _group(codes, ts, list(codes_by_key)))


def _group(codes: np.ndarray, ts: np.ndarray, keys: list[SeriesKey]) -> list[Any]:
    if len(codes) == 0:
        return []

    # A stable sort by (series, time) keeps equal timestamps in arrival order.
    order = np.lexsort((ts, codes))
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.diff(sorted_codes)) + 1
    return [
        (keys[run[0]], idx)
        for run, idx in zip(np.split(sorted_codes, starts), np.split(order, starts), strict=True)
    ]


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else value
