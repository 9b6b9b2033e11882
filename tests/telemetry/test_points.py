"""Validation of one point, and the bounded structures the collector relies on."""

from __future__ import annotations

import pytest

from telemetry.backpressure import PointQueue
from telemetry.dedup import DedupWindow
from telemetry.points import parse_point

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("raw", "errors"),
    [
        ({"name": "cpu", "value": True}, [("value", "must be a finite number")]),
        ({"name": "cpu", "value": "7"}, [("value", "must be a finite number")]),
        ({"name": "", "value": 1}, [("name", "must be a non-empty string")]),
        (
            {"type": "gauge", "name": "cpu", "value": 1},
            [("type", "must be one of event, log, metric, trace")],
        ),
        (
            {"name": "cpu", "value": 1, "attributes": {"pod": ["a"]}},
            [("attributes.pod", "must be a string, a finite number or a boolean")],
        ),
        (
            {"name": "cpu", "value": 1, "timestamp": "yesterday"},
            [("timestamp", "must be an ISO 8601 date-time or Unix seconds")],
        ),
        (
            {"name": "cpu", "value": 1, "timestamp": -5},
            [("timestamp", "must not be before 1970-01-01T00:00:00Z")],
        ),
        (
            {"type": "trace", "name": "GET", "duration_ms": -1},
            [("duration_ms", "must not be negative")],
        ),
        ([1, 2], [("body", "must be a JSON object")]),
    ],
)
def test_invalid_points_name_the_field(raw, errors):
    point, found = parse_point(raw, NOW, 600.0)

    assert point is None
    assert found == errors


def test_valid_point_is_normalised_to_utc_seconds():
    raw = {
        "type": "log",
        "name": "boot",
        "timestamp": "2023-11-14T23:13:20+01:00",
        "severity": "ERROR",
    }

    point, errors = parse_point(raw, NOW, 600.0)

    assert errors == []
    assert point is not None
    assert (point["ts"], point["severity"], point["service"], point["value"]) == (
        1_700_000_000.0,
        "error",
        "unknown",
        None,
    )
    naive, _ = parse_point(
        {"name": "cpu", "value": 1, "timestamp": "2023-11-14T22:13:20"}, NOW, 600.0
    )
    assert naive is not None and naive["ts"] == 1_700_000_000.0


def test_dedup_window_forgets_after_the_window_and_beyond_its_bound():
    window = DedupWindow(window_seconds=10.0, max_entries=3)
    window.remember([1, 2], now=0.0)
    window.remember([3, 4], now=5.0)

    assert (1 in window, 2 in window, 3 in window, 4 in window) == (False, True, True, True)
    window.expire(now=10.0)
    assert (len(window), 2 in window, 3 in window) == (2, False, True)


def test_queue_admits_all_or_nothing_and_counts_the_batch_in_flight():
    queue = PointQueue(capacity=3)

    assert queue.offer([{"n": 1}, {"n": 2}]) is True
    assert queue.offer([{"n": 3}, {"n": 4}]) is False
    batch = queue.take(5)
    assert (len(batch), queue.queued, queue.has_room(2)) == (2, 2, False)
    queue.done(len(batch))
    assert (queue.queued, queue.has_room(3)) == (0, True)
