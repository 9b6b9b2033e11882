"""What a telemetry point is: validation of one posted JSON object into a plain, normalised dict.

A valid point keeps its fields under their posted names, with `timestamp` replaced by `ts`
(float Unix seconds, UTC) and `severity` lower-cased. Points stay plain dicts on purpose: the
pipeline moves tens of thousands a second and a class per point would cost more than it says.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

POINT_TYPES = frozenset({"metric", "log", "trace", "event"})
ERROR_SEVERITIES = frozenset({"error", "critical", "fatal"})

_TEXT_FIELDS = (
    "unit",
    "service",
    "host",
    "environment",
    "trace_id",
    "span_id",
    "parent_span_id",
    "severity",
    "correlation_id",
)
_MAX_NAME = 255
_MAX_TEXT = 255
_MAX_MESSAGE = 8_192
_MAX_ATTRIBUTES = 64

FieldError = tuple[str, str]
SeriesKey = tuple[str, str, tuple[tuple[str, Any], ...]]


def parse_point(
    raw: Any,
    now: float,
    max_future_seconds: float,
    max_age_seconds: float | None = None,
) -> tuple[dict[str, Any] | None, list[FieldError]]:
    """Validate one posted point; return the normalised point or the field errors."""
    if not isinstance(raw, dict):
        return None, [("body", "must be a JSON object")]

    errors: list[FieldError] = []
    point: dict[str, Any] = {}

    point["type"] = _point_type(raw.get("type", "metric"), errors)
    point["name"] = _name(raw.get("name"), errors)
    point["ts"] = _timestamp(raw.get("timestamp", now), errors)
    point["value"] = _optional_number("value", raw.get("value"), errors)
    point["duration_ms"] = _optional_number("duration_ms", raw.get("duration_ms"), errors)
    for field in _TEXT_FIELDS:
        point[field] = _optional_text(field, raw.get(field), _MAX_TEXT, errors)
    point["message"] = _optional_text("message", raw.get("message"), _MAX_MESSAGE, errors)
    point["attributes"] = _attributes(raw.get("attributes"), errors)

    if point["type"] == "metric" and point["value"] is None and "value" not in _fields(errors):
        errors.append(("value", "is required for metrics"))
    if point["duration_ms"] is not None and point["duration_ms"] < 0:
        errors.append(("duration_ms", "must not be negative"))
    if point["severity"] is not None:
        point["severity"] = point["severity"].lower()
    if point["service"] is None:
        point["service"] = "unknown"

    _check_age(point["ts"], now, max_future_seconds, max_age_seconds, errors)
    if errors:
        return None, errors
    return point, errors


def describe(errors: list[FieldError]) -> str:
    """One line for a rejected batch item, e.g. `value: must be a finite number`."""
    return "; ".join(f"{field}: {message}" for field, message in errors)


def series_key(point: dict[str, Any]) -> SeriesKey:
    """A series is a service, a name and the sorted attributes."""
    return (point["service"], point["name"], tuple(sorted(point["attributes"].items())))


def dedup_key(point: dict[str, Any]) -> int:
    """A fingerprint that two re-sent copies of one point share."""
    if point["type"] == "trace" and point["span_id"] is not None:
        return hash(("span", point["span_id"]))
    return hash((point["type"], series_key(point), point["ts"], point["value"], point["message"]))


def analysed_value(point: dict[str, Any]) -> float | None:
    """The number the analyzer watches: a metric's value, or a span's duration."""
    if point["value"] is not None:
        return point["value"]
    if point["type"] == "trace":
        return point["duration_ms"]
    return None


def is_error(point: dict[str, Any]) -> bool:
    """Error logs and events by severity; spans by severity or an error status attribute."""
    if point["severity"] in ERROR_SEVERITIES:
        return True
    if point["type"] != "trace":
        return False

    attributes = point["attributes"]
    if attributes.get("error") is True:
        return True
    status = attributes.get("status", attributes.get("otel.status_code"))
    if isinstance(status, str) and status.lower() == "error":
        return True
    http_status = attributes.get("http.status_code")
    return isinstance(http_status, int) and http_status >= 500


def iso(ts: float) -> str:
    """Unix seconds as an ISO 8601 UTC string."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def parse_instant(text: str) -> float:
    """An ISO 8601 string (naive means UTC) or Unix seconds as Unix seconds; ValueError if not."""
    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _fields(errors: list[FieldError]) -> set[str]:
    return {field for field, _ in errors}


def _point_type(value: Any, errors: list[FieldError]) -> str:
    if value not in POINT_TYPES:
        errors.append(("type", "must be one of event, log, metric, trace"))
        return "metric"
    return str(value)


def _name(value: Any, errors: list[FieldError]) -> str:
    if value is None:
        errors.append(("name", "is required"))
        return ""
    if not isinstance(value, str) or not value.strip():
        errors.append(("name", "must be a non-empty string"))
        return ""
    if len(value) > _MAX_NAME:
        errors.append(("name", f"must be at most {_MAX_NAME} characters"))
    return value


def _is_number(value: Any) -> bool:
    # bool is an int subclass, but `true` is not a measurement.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _timestamp(value: Any, errors: list[FieldError]) -> float:
    if _is_number(value):
        if not math.isfinite(value):
            errors.append(("timestamp", "must be a finite number of Unix seconds"))
            return 0.0
        return float(value)
    if isinstance(value, str):
        try:
            return parse_instant(value)
        except (ValueError, OverflowError):
            pass
    errors.append(("timestamp", "must be an ISO 8601 date-time or Unix seconds"))
    return 0.0


def _optional_number(field: str, value: Any, errors: list[FieldError]) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or not math.isfinite(value):
        errors.append((field, "must be a finite number"))
        return None
    return float(value)


def _optional_text(field: str, value: Any, limit: int, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append((field, "must be a string"))
        return None
    if len(value) > limit:
        errors.append((field, f"must be at most {limit} characters"))
    return value


def _attributes(value: Any, errors: list[FieldError]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(("attributes", "must be an object"))
        return {}
    if len(value) > _MAX_ATTRIBUTES:
        errors.append(("attributes", f"must have at most {_MAX_ATTRIBUTES} entries"))
        return {}

    for key, item in value.items():
        scalar = isinstance(item, str | bool) or (_is_number(item) and math.isfinite(item))
        if not scalar:
            errors.append((f"attributes.{key}", "must be a string, a finite number or a boolean"))
    return value


def _check_age(
    ts: float,
    now: float,
    max_future_seconds: float,
    max_age_seconds: float | None,
    errors: list[FieldError],
) -> None:
    if "timestamp" in _fields(errors):
        return
    if ts < 0:
        errors.append(("timestamp", "must not be before 1970-01-01T00:00:00Z"))
    if ts - now > max_future_seconds:
        errors.append(("timestamp", f"is more than {max_future_seconds:g} seconds in the future"))
    if max_age_seconds is not None and now - ts > max_age_seconds:
        errors.append(("timestamp", f"is more than {max_age_seconds:g} seconds in the past"))
