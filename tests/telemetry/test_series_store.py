"""The rings of recent points: the latest points oldest first, and no more memory than needed."""

from __future__ import annotations

import sys
from array import array

import numpy as np
import pytest

from telemetry.series_store import Ring, SeriesStore, downsample

CAPACITY = 16


@pytest.mark.parametrize("per_append", [1, 3, 16, 40])
def test_a_ring_gives_the_latest_points_oldest_first_as_it_fills_and_wraps(per_append):
    ring = Ring(CAPACITY)
    sent: list[float] = []
    seen = []

    for start in range(0, 100, per_append):
        stamps = [float(t) for t in range(start, min(start + per_append, 100))]
        ring.append(stamps, [2 * t for t in stamps])
        sent += stamps
        for limit in (None, 0, 5, CAPACITY, 40):
            ts, values = ring.recent(limit)
            kept = sent[-CAPACITY:]
            expected = kept if limit is None else kept[len(kept) - min(limit, len(kept)) :]
            seen.append((ts.tolist(), values.tolist()) == (expected, [2 * t for t in expected]))

    assert seen == [True] * len(seen)


def test_a_young_series_holds_only_what_it_has_seen_and_a_full_one_no_more():
    ring = Ring(CAPACITY)
    ring.append([1.0, 2.0, 3.0], [10.0, 20.0, 30.0])
    young = (len(ring.ts), len(ring.values))

    for t in range(4, 100):
        ring.add(float(t), 10.0 * t)

    full = array("d", [0.0] * CAPACITY)
    assert young == (3, 3)
    assert (sys.getsizeof(ring.ts), sys.getsizeof(ring.values)) == (sys.getsizeof(full),) * 2


def test_the_store_knows_when_each_series_was_last_seen():
    store = SeriesStore(CAPACITY)
    store.append(("api", "cpu", ()), [1.0, 2.0], [0.5, 0.6])
    for t in range(3, 40):
        store.append(("api", "mem", ()), [float(t)], [1.0])

    empty_ts, empty_values = store.recent(("api", "disk", ()))

    assert store.last_seen(("api", "cpu", ())) == 2.0
    assert store.last_seen(("api", "mem", ())) == 39.0
    assert (len(store), list(store.matching("api", "mem"))) == (2, [("api", "mem", ())])
    assert (empty_ts.tolist(), empty_values.tolist()) == ([], [])


def test_a_bucket_of_values_near_the_largest_double_has_a_finite_mean():
    huge = 2.0**1023  # their sum is past the largest double; halves of them are exact
    ts = np.array([0.0, 1.0, 10.0])
    values = np.array([1.75 * huge, 1.25 * huge, 5.0])

    buckets = downsample(ts, values, 0.0, 10.0, buckets=2)

    assert [(b["count"], b["min"], b["mean"], b["max"]) for b in buckets] == [
        (2, 1.25 * huge, 1.5 * huge, 1.75 * huge),
        (1, 5.0, 5.0, 5.0),
    ]
