"""OTLP messages onto the service's point model, as `points.TypedPoint`s.

The messages' fields are typed, so each point is built already normalised and the collector
checks only its limits, not the types and conversions a posted JSON object needs.

Gauges and sums become metric points; histograms, exponential histograms and summaries become
two: `<name>.count` and `<name>.sum`. Spans become trace points with their duration and status,
log records become log points. Resource attributes join each point's attributes (the point's
own win a clash); `service.name`, `host.name` and `deployment.environment` fill the point's
fields. Every point remembers which OTLP item it came from, so rejections count in OTLP units.
"""

from __future__ import annotations

import json
from typing import Any

from telemetry.otlp.codec import LOGS, METRICS, TRACES, Signal
from telemetry.points import POINT_FIELDS, TypedPoint

Items = tuple[list[TypedPoint], list[int]]

_LIFTED = {
    "service.name": "service",
    "host.name": "host",
    "deployment.environment.name": "environment",
    "deployment.environment": "environment",
}
_SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}
_HISTOGRAMS = frozenset({"histogram", "exponential_histogram", "summary"})
_BLANK = dict.fromkeys(POINT_FIELDS)
# OTLP severity numbers come in bands of four (logs data model, "Field: SeverityNumber").
_SEVERITY_BANDS = ("trace", "debug", "info", "warn", "error", "fatal")


def points(signal: Signal, request: Any) -> Items:
    """The request's points and, for each, the index of the OTLP item it came from."""
    if signal is METRICS:
        return metric_points(request)
    if signal is TRACES:
        return span_points(request)
    if signal is LOGS:
        return log_points(request)
    raise ValueError(f"unknown OTLP signal {signal.name}")


def metric_points(request: Any) -> Items:
    items: list[TypedPoint] = []
    origins: list[int] = []
    origin = 0
    for resource_metrics in request.resource_metrics:
        fields, shared = _resource(resource_metrics.resource, "metric")
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                if kind not in _HISTOGRAMS:
                    # Gauges and sums, nearly all traffic: one point each, built inline.
                    origin = _number_points(metric, kind, fields, shared, items, origins, origin)
                    continue
                unit = metric.unit or None
                for data_point in getattr(metric, kind).data_points:
                    point_attributes = attributes(data_point.attributes, shared)
                    ts = _seconds(data_point.time_unix_nano)
                    for name, value, counted in _histogram_values(metric.name, kind, data_point):
                        point = fields.copy()
                        # A count is of observations: the metric's unit is its sum's alone.
                        point["unit"] = None if counted else unit
                        point["name"] = name
                        point["ts"] = ts
                        point["value"] = float(value)
                        point["attributes"] = point_attributes
                        items.append(point)
                        origins.append(origin)
                    origin += 1
    return items, origins


def _number_points(
    metric: Any,
    kind: str,
    fields: dict[str, Any],
    shared: dict[str, Any],
    items: list[TypedPoint],
    origins: list[int],
    origin: int,
) -> int:
    """Append a gauge's or a sum's points; the next item's origin."""
    unit, name = metric.unit or None, metric.name
    # A slice of a repeated field is a list, which iterates faster than the field (upb).
    for data_point in getattr(metric, kind).data_points[:]:
        point = fields.copy()  # every field is there already: setting them keeps their order
        point["unit"] = unit
        point["name"] = name
        stamp = data_point.time_unix_nano
        if stamp:  # zero means unset: the point then takes its arrival time
            point["ts"] = stamp / 1e9
        # A double is most values; zero could also be an integer or no value, so ask then.
        value = data_point.as_double
        if not value:
            which = data_point.WhichOneof("value")
            value = None if which is None else float(getattr(data_point, which))
        point["value"] = value
        point["attributes"] = attributes(data_point.attributes, shared)
        items.append(point)
        origins.append(origin)
        origin += 1
    return origin


def span_points(request: Any) -> Items:
    items: list[TypedPoint] = []
    for resource_spans in request.resource_spans:
        fields, shared = _resource(resource_spans.resource, "trace")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                items.append(_span_point(span, fields, shared))
    return items, list(range(len(items)))


def log_points(request: Any) -> Items:
    items: list[TypedPoint] = []
    for resource_logs in request.resource_logs:
        fields, shared = _resource(resource_logs.resource, "log")
        for scope_logs in resource_logs.scope_logs:
            default_name = scope_logs.scope.name or "log"
            for record in scope_logs.log_records:
                items.append(_log_point(record, default_name, fields, shared))
    return items, list(range(len(items)))


def attributes(pairs: Any, shared: dict[str, Any] | None = None) -> dict[str, Any]:
    """The pairs as a dict, over a copy of the shared attributes when given (the pairs win)."""
    found: dict[str, Any] = dict(shared) if shared else {}
    for pair in pairs[:]:  # a list: it iterates faster than the repeated field
        value = pair.value
        # Strings first, without a call: they are most attributes. An empty string reads the
        # same as another kind, so any_value tells those apart.
        text = value.string_value
        found[pair.key] = text if text else any_value(value)
    return found


def any_value(value: Any) -> Any:
    """An AnyValue as a scalar: arrays and maps as compact JSON, bytes as hex."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return ""
    if kind == "bytes_value":
        return value.bytes_value.hex()
    if kind == "array_value":
        return json.dumps([any_value(item) for item in value.array_value.values])
    if kind == "kvlist_value":
        return json.dumps(attributes(value.kvlist_value.values), sort_keys=True)
    return getattr(value, kind)


def _resource(resource: Any, point_type: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A blank point of the type with the fields the resource fills, and the attributes the
    resource shares with every point."""
    shared = attributes(resource.attributes)
    fields = {**_BLANK, "type": point_type}
    for key, field in _LIFTED.items():
        value = shared.pop(key, None)
        if isinstance(value, str) and fields[field] is None:
            fields[field] = value
    return fields, shared


def _seconds(unix_nano: int) -> float | None:
    # Zero means unset in OTLP; the point then takes its arrival time.
    return unix_nano / 1e9 if unix_nano else None


def _histogram_values(name: str, kind: str, data_point: Any) -> list[tuple[str, Any, bool]]:
    """Each value's name, the value, and whether it is a count."""
    values = [(f"{name}.count", data_point.count, True)]
    if kind == "summary" or data_point.HasField("sum"):
        values.append((f"{name}.sum", data_point.sum, False))
    return values


def _span_point(span: Any, fields: dict[str, Any], shared: dict[str, Any]) -> TypedPoint:
    status = _STATUS_CODES.get(span.status.code, "UNSET")
    point = fields.copy()
    point["name"] = span.name
    point["ts"] = _seconds(span.start_time_unix_nano)
    point["duration_ms"] = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
    point["trace_id"] = span.trace_id.hex() or None
    point["span_id"] = span.span_id.hex() or None
    point["parent_span_id"] = span.parent_span_id.hex() or None
    point["severity"] = "error" if status == "ERROR" else None
    point["message"] = span.status.message or None
    point["attributes"] = {
        **shared,
        **attributes(span.attributes),
        "span.kind": _span_kind(span.kind),
        "otel.status_code": status,
    }
    return point


def _span_kind(number: int) -> str:
    # Enums are open in proto3: any 32-bit number, negative ones too, decodes.
    return _SPAN_KINDS[number] if 0 <= number < len(_SPAN_KINDS) else "unspecified"


def _log_point(
    record: Any, default_name: str, fields: dict[str, Any], shared: dict[str, Any]
) -> TypedPoint:
    point = fields.copy()
    point["name"] = record.event_name or default_name
    point["ts"] = _seconds(record.time_unix_nano or record.observed_time_unix_nano)
    point["trace_id"] = record.trace_id.hex() or None
    point["span_id"] = record.span_id.hex() or None
    point["severity"] = _severity(record)
    point["message"] = _body_text(record.body)
    point["attributes"] = attributes(record.attributes, shared)
    return point


def _body_text(body: Any) -> str | None:
    if body.WhichOneof("value") is None:
        return None
    value = any_value(body)
    return value if isinstance(value, str) else json.dumps(value)


def _severity(record: Any) -> str | None:
    if record.severity_text:
        return record.severity_text
    number = record.severity_number
    if not 1 <= number <= 24:
        return None
    return _SEVERITY_BANDS[(number - 1) // 4]
