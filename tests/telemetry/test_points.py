"""Validation of one point, and the bounded structures the collector relies on."""

from __future__ import annotations

import copy

import pytest

from telemetry.backpressure import PointQueue, batch_bytes, point_bytes
from telemetry.dedup import DedupWindow
from telemetry.point_batches import dedup_keys, parse_points, read_each, series_keys
from telemetry.points import DEFAULT_LIMITS, PointLimits, dedup_key, parse_point, series_key

NOW = 1_700_000_000.0
SURROGATE = "must be valid Unicode (no lone surrogates)"
ANY_TYPE = [("type", "must be one of event, log, metric, trace")]


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
    point, found = parse_point(raw, NOW)

    assert point is None
    assert found == errors


BAD_STAMP = [("timestamp", "must be an ISO 8601 date-time or Unix seconds")]
HUGE = 10**400  # what JSON's 1 followed by 400 zeros parses to: no float can hold it


@pytest.mark.parametrize(
    ("raw", "errors"),
    [
        ({"name": "cpu", "value": 1, "timestamp": "nan"}, BAD_STAMP),
        ({"name": "cpu", "value": 1, "timestamp": "NaN"}, BAD_STAMP),
        ({"name": "cpu", "value": 1, "timestamp": "inf"}, BAD_STAMP),
        ({"name": "cpu", "value": 1, "timestamp": "-Infinity"}, BAD_STAMP),
        ({"name": "\ud800", "value": 1}, [("name", SURROGATE)]),
        ({"name": "cpu", "value": 1, "service": "a\udfffb"}, [("service", SURROGATE)]),
        ({"name": "cpu", "value": 1, "trace_id": "\ud800"}, [("trace_id", SURROGATE)]),
        ({"type": "log", "name": "l", "message": "\udc00"}, [("message", SURROGATE)]),
        (
            {"name": "cpu", "value": 1, "attributes": {"\ud800": 1}},
            [("attributes", "keys " + SURROGATE)],
        ),
        ({"name": "cpu", "value": 1, "attributes": {"k": "\ud800"}}, [("attributes.k", SURROGATE)]),
        ({"name": "cpu", "value": HUGE}, [("value", "must be a finite number")]),
        (
            {"type": "trace", "name": "GET", "duration_ms": -HUGE},
            [("duration_ms", "must be a finite number")],
        ),
        (
            {"name": "cpu", "value": 1, "timestamp": HUGE},
            [("timestamp", "must be a finite number of Unix seconds")],
        ),
        (
            {"name": "cpu", "value": 1, "attributes": {"k": HUGE}},
            [("attributes.k", "must be a string, a finite number or a boolean")],
        ),
        ({"type": [1], "name": "cpu", "value": 1}, ANY_TYPE),
        ({"type": {"a": 1}, "name": "cpu", "value": 1}, ANY_TYPE),
    ],
)
def test_input_that_once_raised_is_rejected_with_a_reason(raw, errors):
    point, found = parse_point(raw, NOW)

    assert point is None
    assert found == errors


def control(code: str) -> str:
    return f"must not hold the control character U+{code}"


@pytest.mark.parametrize(
    ("raw", "errors"),
    [
        ({"name": "cpu\x00", "value": 1}, [("name", control("0000"))]),
        ({"name": "cpu", "value": 1, "service": "\x1b[31mapi"}, [("service", control("001B"))]),
        ({"name": "cpu", "value": 1, "host": "web\x7f"}, [("host", control("007F"))]),
        ({"name": "cpu", "value": 1, "unit": "m\x0bs"}, [("unit", control("000B"))]),
        ({"type": "log", "name": "l", "message": "a\x08b"}, [("message", control("0008"))]),
        (
            {"name": "cpu", "value": 1, "attributes": {"pod\x1f": 1}},
            [("attributes", "keys " + control("001F"))],
        ),
        (
            {"name": "cpu", "value": 1, "attributes": {"pod": "\x1b]0;title\x07"}},
            [("attributes.pod", control("001B"))],
        ),
        (
            {"name": "c\x01", "value": 1, "severity": "\x02", "attributes": {"k": "\x03"}},
            [
                ("name", control("0001")),
                ("severity", control("0002")),
                ("attributes.k", control("0003")),
            ],
        ),
    ],
)
def test_control_characters_in_text_reject_the_point(raw, errors):
    point, found = parse_point(raw, NOW)

    assert point is None
    assert found == errors


def test_tabs_line_breaks_and_printable_unicode_are_kept():
    text = "line one\r\n\tline two: café ☕ 😀 \u00a0\u2028\u200d \x85"
    raw = {"type": "log", "name": "l", "message": text, "attributes": {"note": text}}

    point, errors = parse_point(raw, NOW)

    assert errors == []
    assert point is not None
    assert (point["message"], point["attributes"]) == (text, {"note": text})


def test_valid_point_is_normalised_to_utc_seconds():
    raw = {
        "type": "log",
        "name": "boot",
        "timestamp": "2023-11-14T23:13:20+01:00",
        "severity": "ERROR",
    }

    point, errors = parse_point(raw, NOW)

    assert errors == []
    assert point is not None
    assert (point["ts"], point["severity"], point["service"], point["value"]) == (
        1_700_000_000.0,
        "error",
        "unknown",
        None,
    )
    naive, _ = parse_point({"name": "cpu", "value": 1, "timestamp": "2023-11-14T22:13:20"}, NOW)
    assert naive is not None and naive["ts"] == 1_700_000_000.0


def test_limits_bound_names_texts_messages_and_attributes():
    limits = PointLimits(max_name=4, max_text=3, max_message=5, max_attributes=2)
    raw = {
        "name": "cpu.usage",
        "value": 1,
        "service": "checkout",
        "message": "too long",
        "attributes": {"pod": "abcd", "region": "eu"},
    }

    point, errors = parse_point(raw, NOW, limits)

    assert point is None
    assert errors == [
        ("name", "must be at most 4 characters"),
        ("service", "must be at most 3 characters"),
        ("message", "must be at most 5 characters"),
        ("attributes.pod", "must be at most 3 characters"),
        ("attributes", "keys must be at most 4 characters"),
    ]
    _, too_many = parse_point(
        {"name": "cpu", "value": 1, "attributes": dict.fromkeys("abc", 1)}, NOW, limits
    )
    assert too_many == [("attributes", "must have at most 2 entries")]


def test_dedup_window_remembers_for_the_window_and_forgets_whole_slices():
    window = DedupWindow(window_seconds=8.0, max_entries=1_000, slices=4)
    window.remember([1, 2], now=0.0)
    window.remember([3], now=2.5)  # the first slice is 2 s long: [1, 2] is sealed

    assert window.seen([1, 2, 3, 4]).tolist() == [True, True, True, False]
    window.expire(now=7.9)
    assert (len(window), 1 in window, 3 in window) == (3, True, True)
    window.expire(now=8.0)  # [1, 2] arrived 8 s ago: the whole sealed slice goes
    assert (len(window), 1 in window, 2 in window, 3 in window) == (1, False, False, True)
    window.expire(now=10.5)
    assert len(window) == 0


def test_dedup_window_drops_the_oldest_slice_beyond_its_bound():
    window = DedupWindow(window_seconds=60.0, max_entries=4, slices=2)  # slices of 2 entries

    window.remember([1, 2, 3], now=0.0)
    window.remember([4, 5], now=1.0)

    assert len(window) <= 4
    assert window.seen([1, 2, 3, 4, 5]).tolist() == [False, False, True, True, True]


def test_dedup_window_of_zero_remembers_nothing():
    window = DedupWindow(window_seconds=0.0, max_entries=10)
    window.remember([1], now=0.0)

    assert (len(window), 1 in window) == (0, False)


def test_queue_admits_all_or_nothing_and_counts_the_batch_in_flight():
    queue = PointQueue(capacity=3)

    assert queue.offer([{"n": 1}, {"n": 2}], sizes=[10, 10]) is True
    assert queue.offer([{"n": 3}, {"n": 4}], sizes=[10, 10]) is False
    batch, size = queue.take(5)
    assert (len(batch), size, queue.queued, queue.has_room(2)) == (2, 20, 2, False)
    queue.done(len(batch), size)
    assert (queue.queued, queue.queued_bytes, queue.has_room(3)) == (0, 0, True)


def test_queue_is_bounded_in_bytes_too():
    queue = PointQueue(capacity=100, capacity_bytes=1_000)

    assert queue.offer([{"n": 1}], sizes=[600]) is True
    assert queue.offer([{"n": 2}, {"n": 3}], sizes=[300, 200]) is False
    assert queue.offer([{"n": 2}], sizes=[400]) is True
    assert (queue.queued, queue.queued_bytes) == (2, 1_000)


def _point(**fields):
    raw = {"name": "cpu", "value": 1.0, "timestamp": NOW - 60, **fields}
    point, errors = parse_point(raw, NOW)
    assert errors == []
    return point


@pytest.mark.parametrize(
    "difference",
    [
        {"host": "web-2"},
        {"environment": "staging"},
        {"attributes": {"pod": "b"}},
        {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4737"},
        {"span_id": "00f067aa0ba902b7"},
        {"correlation_id": "order-2"},
        {"severity": "ERROR"},
        {"unit": "ms"},
        {"message": "second"},
        {"duration_ms": 5.0},
    ],
)
def test_points_that_differ_in_any_field_are_not_duplicates(difference):
    base = {"host": "web-1", "environment": "prod", "attributes": {"pod": "a"}, "message": "first"}
    first = _point(**base)
    other = _point(**{**base, **difference})

    assert dedup_key(first) == dedup_key(_point(**base))
    assert dedup_key(first) != dedup_key(other)


def test_a_span_is_the_same_span_only_within_its_trace():
    span = {"type": "trace", "name": "GET", "duration_ms": 3.0, "span_id": "00f067aa0ba902b7"}
    first = _point(**span, trace_id="4bf92f3577b34da6a3ce929d0e0e4737")
    # By the rule a span id names the span: a copy is a duplicate whatever it carries.
    resent = _point(**{**span, "duration_ms": 4.0}, trace_id="4bf92f3577b34da6a3ce929d0e0e4737")
    other_trace = _point(**span, trace_id="0af7651916cd43dd8448eb211c80319c")

    assert dedup_key(first) == dedup_key(resent)
    assert dedup_key(first) != dedup_key(other_trace)


def _metric(index: int, **fields):
    return {"name": f"m{index % 3}", "value": float(index), "timestamp": NOW - index, **fields}


BATCHES = {
    "plain metrics": [_metric(i, service="api", attributes={"host": f"h{i}"}) for i in range(5)],
    "integers, date-times and no timestamp": [
        {"name": "cpu", "value": 3, "timestamp": int(NOW) - 5},
        {"name": "cpu", "value": 2.5, "timestamp": "2023-11-14T22:13:20+01:00"},
        {"name": "cpu", "value": 1},
    ],
    "every field": [
        {
            "type": "trace",
            "name": "GET /",
            "timestamp": NOW - 1,
            "duration_ms": 12,
            "unit": "ms",
            "service": "checkout",
            "host": "web-1",
            "environment": "prod",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4737",
            "span_id": "00f067aa0ba902b7",
            "parent_span_id": "00f067aa0ba902b6",
            "severity": "ERROR",
            "correlation_id": "order-1",
            "message": "line one\n\tline two",
            "attributes": {"b": True, "a": 1, "c": -0.0, "d": "x"},
        },
        {"type": "log", "name": "boot", "message": "up", "attributes": None, "severity": None},
        {"type": "event", "name": "deploy", "service": None},
    ],
    "one bad item among good ones": [_metric(0), {"name": "cpu"}, _metric(2)],
    "not an object": [_metric(0), [1, 2]],
    "a huge integer": [_metric(0), _metric(1, value=10**400)],
    "a non-finite value": [_metric(0, value=float("nan")), _metric(1)],
    "a future timestamp": [_metric(0), _metric(1, timestamp=NOW + 601)],
    "a control character in an attribute": [_metric(0, attributes={"k": "\x1b[2J"})],
    "a boolean value": [_metric(0, value=True)],
    "a list attribute": [_metric(0, attributes={"k": [1]})],
    "an unknown type": [_metric(0, type="gauge")],
    "a blank name": [_metric(0), {"name": " ", "value": 1.0}],
    "a metric without a value": [{"type": "log", "name": "l"}, {"type": "metric", "name": "m"}],
}


@pytest.mark.parametrize("case", list(BATCHES))
def test_a_batch_reads_as_its_items_one_by_one(case):
    items = BATCHES[case]
    expected = read_each(parse_point, copy.deepcopy(items), NOW, DEFAULT_LIMITS)

    points, rejections = parse_points(copy.deepcopy(items), NOW)

    assert (points, rejections) == expected
    assert [list(point) for point in points] == [list(point) for point in expected[0]]
    assert dedup_keys(points) == [dedup_key(point) for point in points]
    assert series_keys(points) == [series_key(point) for point in points]
    assert batch_bytes(points) == [point_bytes(point) for point in points]
