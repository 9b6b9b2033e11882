"""OTLP points are built typed and only limit-checked; the verdict must equal the full validation.

Each case maps a real OTLP message, then validates every point twice: as built (the fast path)
and as the plain posted object the mapping used to produce (the full path). Both must give the
same point, or the same field errors.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from telemetry.otlp import mapping
from telemetry.point_batches import check_typed_points, read_each
from telemetry.points import PointLimits, TypedPoint, check_typed_point, dedup_key, parse_point

NOW = time.time()
NOW_NS = int(NOW * 1e9)
LIMITS = PointLimits(max_name=20, max_text=32, max_message=30, max_attributes=3)


def _text(key: str, value: str) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))


def _double(key: str, value: float) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(double_value=value))


def _gauges(*points: dict[str, Any], service: str = "api", name: str = "cpu") -> Any:
    resource = metrics_pb2.ResourceMetrics()
    resource.resource.attributes.append(_text("service.name", service))
    metric = resource.scope_metrics.add().metrics.add(name=name, unit="1")
    for fields in points:
        metric.gauge.data_points.add(**fields)
    return metrics_service_pb2.ExportMetricsServiceRequest(resource_metrics=[resource])


def _histogram() -> Any:
    resource = metrics_pb2.ResourceMetrics()
    metric = resource.scope_metrics.add().metrics.add(name="latency")
    metric.histogram.data_points.add(time_unix_nano=NOW_NS, count=4, sum=2.5)
    return metrics_service_pb2.ExportMetricsServiceRequest(resource_metrics=[resource])


def _spans(*spans: trace_pb2.Span) -> Any:
    resource = trace_pb2.ResourceSpans()
    resource.resource.attributes.append(_text("service.name", "api"))
    resource.scope_spans.add().spans.extend(spans)
    return trace_service_pb2.ExportTraceServiceRequest(resource_spans=[resource])


def _logs(*records: logs_pb2.LogRecord) -> Any:
    resource = logs_pb2.ResourceLogs()
    resource.resource.attributes.append(_text("host.name", "web-1"))
    resource.scope_logs.add().log_records.extend(records)
    return logs_service_pb2.ExportLogsServiceRequest(resource_logs=[resource])


def _span(start_ns: int, end_ns: int, **fields: Any) -> trace_pb2.Span:
    return trace_pb2.Span(
        trace_id=bytes(range(16)),
        span_id=bytes(range(8)),
        name="GET /",
        start_time_unix_nano=start_ns,
        end_time_unix_nano=end_ns,
        **fields,
    )


def _posted(point: TypedPoint) -> dict[str, Any]:
    """The plain object a client would post for the same point."""
    posted = {field: value for field, value in point.items() if value is not None}
    if "ts" in posted:
        posted["timestamp"] = posted.pop("ts")
    return posted


CASES = {
    "gauge": (_gauges({"time_unix_nano": NOW_NS, "as_double": 0.5}), []),
    "integer gauge without a time": (_gauges({"as_int": 7}), []),
    "no value": (_gauges({"time_unix_nano": NOW_NS}), [("value", "is required for metrics")]),
    "nan": (
        _gauges({"time_unix_nano": NOW_NS, "as_double": float("nan")}),
        [("value", "must be a finite number")],
    ),
    "future": (
        _gauges({"time_unix_nano": NOW_NS + 601 * 10**9, "as_double": 1.0}),
        [("timestamp", "is more than 600 seconds in the future")],
    ),
    "long name": (
        _gauges({"as_double": 1.0}, name="n" * 21),
        [("name", "must be at most 20 characters")],
    ),
    "blank name": (_gauges({"as_double": 1.0}, name=" "), [("name", "must be a non-empty string")]),
    "long service": (
        _gauges({"as_double": 1.0}, service="s" * 33),
        [("service", "must be at most 32 characters")],
    ),
    "long attribute": (
        _gauges({"as_double": 1.0, "attributes": [_text("region", "r" * 33)]}),
        [("attributes.region", "must be at most 32 characters")],
    ),
    "infinite attribute": (
        _gauges({"as_double": 1.0, "attributes": [_double("load", float("inf"))]}),
        [("attributes.load", "must be a string, a finite number or a boolean")],
    ),
    "too many attributes": (
        _gauges({"as_double": 1.0, "attributes": [_text(f"k{i}", "v") for i in range(4)]}),
        [("attributes", "must have at most 3 entries")],
    ),
    "histogram": (_histogram(), []),
    "span": (_spans(_span(NOW_NS - 10**9, NOW_NS)), []),
    "span ending before it starts": (
        _spans(_span(NOW_NS, NOW_NS - 10**6)),
        [("duration_ms", "must not be negative")],
    ),
    "span with a long status message": (
        _spans(_span(NOW_NS - 10**6, NOW_NS, status=trace_pb2.Status(code=2, message="m" * 31))),
        [("message", "must be at most 30 characters")],
    ),
    "log with upper-case severity": (
        _logs(logs_pb2.LogRecord(time_unix_nano=NOW_NS, severity_text="WARN")),
        [],
    ),
    "log with a long id": (
        _logs(logs_pb2.LogRecord(time_unix_nano=NOW_NS, trace_id=bytes(17))),
        [("trace_id", "must be at most 32 characters")],
    ),
    "escape sequence in a service": (
        _gauges({"as_double": 1.0}, service="api\x1b[2J"),
        [("service", "must not hold the control character U+001B")],
    ),
    "nul in a metric name": (
        _gauges({"as_double": 1.0}, name="cpu\x00"),
        [("name", "must not hold the control character U+0000")],
    ),
    "control character in an attribute key": (
        _gauges({"as_double": 1.0, "attributes": [_text("re\x7fgion", "eu")]}),
        [("attributes", "keys must not hold the control character U+007F")],
    ),
    "control character in an attribute value": (
        _gauges({"as_double": 1.0, "attributes": [_text("region", "e\x08u")]}),
        [("attributes.region", "must not hold the control character U+0008")],
    ),
    "log body with a terminal title sequence": (
        _logs(
            logs_pb2.LogRecord(
                time_unix_nano=NOW_NS, body=common_pb2.AnyValue(string_value="\x1b]0;x\x07")
            )
        ),
        [("message", "must not hold the control character U+001B")],
    ),
    "log body with tabs and line breaks": (
        _logs(
            logs_pb2.LogRecord(
                time_unix_nano=NOW_NS, body=common_pb2.AnyValue(string_value="a\tb\r\nc")
            )
        ),
        [],
    ),
}
SIGNALS = {
    metrics_service_pb2.ExportMetricsServiceRequest: mapping.metric_points,
    trace_service_pb2.ExportTraceServiceRequest: mapping.span_points,
    logs_service_pb2.ExportLogsServiceRequest: mapping.log_points,
}


@pytest.mark.parametrize(
    ("number", "kind"), [(2, "server"), (5, "consumer"), (6, "unspecified"), (-1, "unspecified")]
)
def test_a_span_kind_outside_the_enum_is_unspecified(number: int, kind: str) -> None:
    [point], _ = mapping.span_points(_spans(_span(NOW_NS - 10**6, NOW_NS, kind=number)))

    assert point["attributes"]["span.kind"] == kind


@pytest.mark.parametrize("case", list(CASES))
def test_typed_points_get_the_verdict_of_the_full_validation(case: str) -> None:
    request, expected_errors = CASES[case]
    items, _ = SIGNALS[type(request)](request)

    for item in items:
        point, errors = check_typed_point(item, NOW, LIMITS)
        full_point, full_errors = parse_point(_posted(item), NOW, LIMITS)

        assert errors == full_errors == expected_errors
        assert point == full_point
        if point is not None:
            assert type(point) is dict
            assert list(point) == list(full_point)
            assert dedup_key(point) == dedup_key(full_point)


@pytest.mark.parametrize("case", list(CASES))
def test_a_batch_of_typed_points_reads_as_its_points_one_by_one(case: str) -> None:
    request, _ = CASES[case]
    items, _ = SIGNALS[type(request)](request)
    # Read one by one first: the batch reader normalises the points in place.
    expected = read_each(check_typed_point, items, NOW, LIMITS)

    points, rejections = check_typed_points(items, NOW, LIMITS)

    assert (points, rejections) == expected
    assert [list(point) for point in points] == [list(point) for point in expected[0]]


def test_a_typed_point_is_normalised_like_a_posted_one() -> None:
    request = _logs(logs_pb2.LogRecord(severity_text="WARN", body=common_pb2.AnyValue(int_value=3)))
    (item,), _ = mapping.log_points(request)

    point, errors = check_typed_point(item, NOW, LIMITS)

    assert errors == []
    assert point == {
        "type": "log",
        "name": "log",
        "ts": NOW,
        "value": None,
        "duration_ms": None,
        "unit": None,
        "service": "unknown",
        "host": "web-1",
        "environment": None,
        "trace_id": None,
        "span_id": None,
        "parent_span_id": None,
        "severity": "warn",
        "correlation_id": None,
        "message": "3",
        "attributes": {},
    }
