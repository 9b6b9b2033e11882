"""Metric series that move together: Spearman's rank correlation over aligned event-time buckets.

Each series is reduced to its mean per bucket on one shared grid, so series sampled at
different instants are still compared like for like. A pair is reported when enough buckets
overlap, the coefficient is strong and its p-value small. The work runs on a snapshot, so it
can leave the event loop.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from telemetry.points import SeriesKey, iso
from telemetry.series_store import SeriesStore

MIN_OVERLAP = 8


@dataclass(frozen=True, slots=True)
class CoMovementQuery:
    bucket_seconds: float
    max_series: int
    min_strength: float = 0.7
    max_p_value: float = 0.01


Snapshot = list[tuple[SeriesKey, np.ndarray, np.ndarray]]


def snapshot(
    store: SeriesStore, service: str | None, since: float | None, until: float | None, limit: int
) -> Snapshot:
    """Copies of the most recently active series' points in the time range."""
    # The asked-for service's series first, then the most recently active.
    keys = sorted(
        store.matching(None, None),
        key=lambda key: (service is not None and key[0] != service, -store.last_seen(key)),
    )
    taken: Snapshot = []
    for key in keys:
        ts, values = store.recent(key)
        keep = np.isfinite(values)
        if since is not None:
            keep &= ts >= since
        if until is not None:
            keep &= ts <= until
        if keep.sum() >= MIN_OVERLAP:
            taken.append((key, ts[keep].copy(), values[keep].copy()))
        if len(taken) >= limit:
            break
    if service is not None and not any(key[0] == service for key, _, _ in taken):
        return []
    return taken


def co_moving(series: Snapshot, query: CoMovementQuery, service: str | None) -> list[dict]:
    """Pairs that move together, the strongest first."""
    if len(series) < 2:
        return []
    start = min(float(ts[0]) for _, ts, _ in series)
    end = max(float(ts[-1]) for _, ts, _ in series)
    width = query.bucket_seconds
    columns = math.floor((end - start) / width) + 1
    grid = np.vstack([_bucket_means(ts, values, start, width, columns) for _, ts, values in series])

    present = ~np.isnan(grid)
    same_buckets = _same_buckets(grid, present)
    found = []
    for a, b in itertools.combinations(range(len(series)), 2):
        key_a, key_b = series[a][0], series[b][0]
        if service is not None and service not in (key_a[0], key_b[0]):
            continue
        both = present[a] & present[b]
        overlap = int(both.sum())
        if overlap < MIN_OVERLAP:
            continue
        rho, p_value = same_buckets.get((a, b)) or _spearman(grid[a][both], grid[b][both])
        if math.isnan(rho) or abs(rho) < query.min_strength or p_value > query.max_p_value:
            continue
        found.append(_finding(key_a, key_b, rho, p_value, overlap, both, start, width))
    found.sort(key=lambda item: -abs(item["coefficient"]))
    return found


def _same_buckets(grid: np.ndarray, present: np.ndarray) -> dict[tuple[int, int], tuple]:
    """Spearman for every pair of series filled in the same buckets, as one matrix product.

    The usual case is that every series reports in every bucket; then ranking each row once
    and correlating the ranks gives what a pairwise `spearmanr` would, far faster.
    """
    groups: dict[bytes, list[int]] = {}
    for row, mask in enumerate(present):
        groups.setdefault(np.packbits(mask).tobytes(), []).append(row)

    results: dict[tuple[int, int], tuple] = {}
    for rows in groups.values():
        n = int(present[rows[0]].sum())
        if len(rows) < 2 or n < MIN_OVERLAP:
            continue
        ranks = stats.rankdata(grid[rows][:, present[rows[0]]], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = np.clip(np.corrcoef(ranks), -1.0, 1.0)
            t = rho * np.sqrt((n - 2) / ((1.0 - rho) * (1.0 + rho)))
        # The same t-test on the coefficient that `scipy.stats.spearmanr` reports.
        p = 2 * stats.t.sf(np.abs(t), n - 2)
        for i, j in itertools.combinations(range(len(rows)), 2):
            results[(rows[i], rows[j])] = (float(rho[i, j]), float(p[i, j]))
    return results


def _spearman(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    result = stats.spearmanr(a, b)
    return float(result.statistic), float(result.pvalue)


def _bucket_means(
    ts: np.ndarray, values: np.ndarray, start: float, width: float, columns: int
) -> np.ndarray:
    index = np.clip(((ts - start) // width).astype(np.int64), 0, columns - 1)
    sums = np.bincount(index, weights=values, minlength=columns)
    counts = np.bincount(index, minlength=columns)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _finding(
    key_a: SeriesKey,
    key_b: SeriesKey,
    rho: float,
    p_value: float,
    overlap: int,
    both: np.ndarray,
    start: float,
    width: float,
) -> dict[str, Any]:
    columns = np.flatnonzero(both)
    return {
        "kind": "metric",
        "series": [_series_view(key_a), _series_view(key_b)],
        "services": sorted({key_a[0], key_b[0]}),
        "method": "spearman",
        "coefficient": round(rho, 6),
        "direction": "together" if rho > 0 else "opposite",
        "p_value": p_value,
        "buckets": overlap,
        "bucket_seconds": width,
        "first_seen": iso(start + columns[0] * width),
        "last_seen": iso(start + (columns[-1] + 1) * width),
    }


def _series_view(key: SeriesKey) -> dict[str, Any]:
    return {"service": key[0], "name": key[1], "attributes": dict(key[2])}
