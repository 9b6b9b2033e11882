"""What a telemetry point is: validation of one posted JSON object into a plain, normalised dict.

A valid point keeps its fields under their posted names, with `timestamp` replaced by `ts`
(float Unix seconds, UTC) and `severity` lower-cased. Points stay plain dicts on purpose: the
pipeline moves tens of thousands a second and a class per point would cost more than it says.
The collector reads a request a batch at a time (point_batches.py), with the verdicts the
per-item functions here give.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.strict_json import UNSAFE_TEXT

POINT_TYPES = frozenset({"metric", "log", "trace", "event"})
ERROR_SEVERITIES = frozenset({"error", "critical", "fatal"})

TEXT_FIELDS = (
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
# Why a lone surrogate is refused: it cannot be written out as UTF-8 in any answer.
_SURROGATE = "must be valid Unicode (no lone surrogates)"
# Why a control character is refused: an escape sequence in a name or a message would reach
# dashboards, logs and terminals; NUL breaks PostgreSQL text and C strings downstream.
_CONTROL = "must not hold the control character U+{:04X}"
FieldError = tuple[str, str]
SeriesKey = tuple[str, str, tuple[tuple[str, Any], ...]]


@dataclass(frozen=True, slots=True)
class PointLimits:
    """What one point may hold; each bound is a setting so an operator can widen it."""

    max_future_seconds: float = 600.0
    max_age_seconds: float | None = None
    max_name: int = 255
    max_text: int = 255
    max_message: int = 8_192
    max_attributes: int = 64

    @classmethod
    def from_settings(cls, settings: Any) -> PointLimits:
        return cls(
            max_future_seconds=settings.telemetry_max_future_seconds,
            max_age_seconds=settings.telemetry_max_age_seconds,
            max_name=settings.telemetry_max_name_length,
            max_text=settings.telemetry_max_text_length,
            max_message=settings.telemetry_max_message_length,
            max_attributes=settings.telemetry_max_attributes,
        )


DEFAULT_LIMITS = PointLimits()
# A normalised point's fields, in the order parse_point writes them.
POINT_FIELDS = (
    "type",
    "name",
    "ts",
    "value",
    "duration_ms",
    *TEXT_FIELDS,
    "message",
    "attributes",
)


# A point built from typed input (OTLP messages): a dict with POINT_FIELDS in order and of the
# normalised types, `ts` None for the arrival time; `check_typed_point` checks its limits.
TypedPoint = dict[str, Any]


# How one item is read: `parse_point` for posted JSON, `check_typed_point` for points built from
# OTLP messages.
PointReader = Callable[[Any, float, PointLimits], tuple[dict[str, Any] | None, list[FieldError]]]
# A batch read: its valid points in order, and the index and field errors of every other item.
Readout = tuple[list[dict[str, Any]], list[tuple[int, list[FieldError]]]]
# How the collector reads a batch: `parse_points` or `check_typed_points` (point_batches.py).
BatchReader = Callable[[list[Any], float, PointLimits], Readout]


def parse_point(
    raw: Any, now: float, limits: PointLimits = DEFAULT_LIMITS
) -> tuple[dict[str, Any] | None, list[FieldError]]:
    """Validate one posted point; return the normalised point or the field errors."""
    if not isinstance(raw, dict):
        return None, [("body", "must be a JSON object")]

    errors: list[FieldError] = []
    point: dict[str, Any] = {}

    point["type"] = _point_type(raw.get("type", "metric"), errors)
    point["name"] = _name(raw.get("name"), limits.max_name, errors)
    point["ts"] = _timestamp(raw.get("timestamp", now), errors)
    point["value"] = _optional_number("value", raw.get("value"), errors)
    point["duration_ms"] = _optional_number("duration_ms", raw.get("duration_ms"), errors)
    for field in TEXT_FIELDS:
        text = raw.get(field)
        # Most points carry few of these; an absent one costs a lookup, not a call.
        point[field] = (
            None if text is None else _optional_text(field, text, limits.max_text, errors)
        )
    point["message"] = _optional_text("message", raw.get("message"), limits.max_message, errors)
    point["attributes"] = _attributes(raw.get("attributes"), limits, errors)

    if point["type"] == "metric" and point["value"] is None and "value" not in _fields(errors):
        errors.append(("value", "is required for metrics"))
    if point["duration_ms"] is not None and point["duration_ms"] < 0:
        errors.append(("duration_ms", "must not be negative"))
    if point["severity"] is not None:
        point["severity"] = point["severity"].lower()
    if point["service"] is None:
        point["service"] = "unknown"

    _check_age(point["ts"], now, limits.max_future_seconds, limits.max_age_seconds, errors)
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
    """A fingerprint that only re-sent copies of one point share: every posted field counts."""
    if point["type"] == "trace" and point["span_id"] is not None:
        # A span id is unique only within its trace (W3C Trace Context).
        return hash(("span", point["trace_id"], point["span_id"]))
    attributes = point["attributes"]
    return hash(
        (
            point["type"],
            point["name"],
            point["ts"],
            point["value"],
            point["duration_ms"],
            point["message"],
            # Written out rather than looped over TEXT_FIELDS: this runs for every point.
            point["unit"],
            point["service"],
            point["host"],
            point["environment"],
            point["trace_id"],
            point["span_id"],
            point["parent_span_id"],
            point["severity"],
            point["correlation_id"],
            tuple(sorted(attributes.items())) if attributes else (),
        )
    )


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
        seconds = float(text)
    except ValueError:
        pass
    else:
        # float() reads "nan" and "inf", which are no instant and break sorting downstream.
        if not math.isfinite(seconds):
            raise ValueError(f"{text!r} is not a finite number of seconds")
        return seconds
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def check_typed_point(
    point: TypedPoint, now: float, limits: PointLimits = DEFAULT_LIMITS
) -> tuple[dict[str, Any] | None, list[FieldError]]:
    """A typed point within its limits as a plain point; otherwise the full validation decides,
    so a rejection reads exactly as it would for the same point posted as JSON."""
    ts = now if point["ts"] is None else point["ts"]
    if not within_limits(point, ts, now, limits):
        posted = {field: value for field, value in point.items() if value is not None}
        if "ts" in posted:
            posted["timestamp"] = posted.pop("ts")
        return parse_point(posted, now, limits)

    normal = dict(point)
    normal["ts"] = ts
    if normal["severity"] is not None:
        normal["severity"] = normal["severity"].lower()
    if normal["service"] is None:
        normal["service"] = "unknown"
    return normal, []


def within_limits(point: TypedPoint, ts: float, now: float, limits: PointLimits) -> bool:
    """Whether parse_point would accept the point: its checks, less those the types make moot."""
    name = point["name"]
    if len(name) > limits.max_name or not name.strip():
        return False
    value = point["value"]
    if value is None:
        if point["type"] == "metric":
            return False
    elif not math.isfinite(value):
        return False
    duration = point["duration_ms"]
    if duration is not None and not (math.isfinite(duration) and duration >= 0):
        return False
    if ts < 0 or ts - now > limits.max_future_seconds:
        return False
    if limits.max_age_seconds is not None and now - ts > limits.max_age_seconds:
        return False

    message = point["message"] or ""
    if len(message) > limits.max_message or not (is_clean_text(message) and is_clean_text(name)):
        return False
    max_text = limits.max_text
    # filter and map rather than a loop over the fields, and isprintable() before any call:
    # this runs for every point, and isprintable() alone settles almost every string.
    for text in filter(None, map(point.__getitem__, TEXT_FIELDS)):
        if len(text) > max_text or not (text.isprintable() or text_error(text) is None):
            return False

    attributes = point["attributes"]
    if len(attributes) > limits.max_attributes:
        return False
    for key, item in attributes.items():
        if len(key) > limits.max_name or not (key.isprintable() or text_error(key) is None):
            return False
        if type(item) is str:
            if len(item) > max_text or not (item.isprintable() or text_error(item) is None):
                return False
        elif type(item) is float and not math.isfinite(item):
            return False
    return True


def is_clean_text(text: str) -> bool:
    """Whether parse_point would keep the text (see text_error)."""
    return text.isprintable() or text_error(text) is None


def _fields(errors: list[FieldError]) -> set[str]:
    return {field for field, _ in errors} if errors else set()


def _point_type(value: Any, errors: list[FieldError]) -> str:
    # The str check first: a list or an object is unhashable and cannot be looked up in a set.
    if not isinstance(value, str) or value not in POINT_TYPES:
        errors.append(("type", "must be one of event, log, metric, trace"))
        return "metric"
    return str(value)


def _name(value: Any, limit: int, errors: list[FieldError]) -> str:
    if value is None:
        errors.append(("name", "is required"))
        return ""
    if not isinstance(value, str) or not value.strip():
        errors.append(("name", "must be a non-empty string"))
        return ""
    if len(value) > limit:
        errors.append(("name", f"must be at most {limit} characters"))
    if not value.isprintable() and (reason := text_error(value)):
        errors.append(("name", reason))
    return value


def _is_number(value: Any) -> bool:
    kind = type(value)
    if kind is float or kind is int:  # the common case, without the subclass checks
        return True
    # bool is an int subclass, but `true` is not a measurement.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    """For a number: whether it is a finite float; an int too large for a float is not."""
    try:
        return math.isfinite(value)
    except OverflowError:  # JSON allows integers of thousands of digits
        return False


def text_error(text: str) -> str | None:
    """Why the text cannot be kept: a C0 control other than tab, line feed and carriage return,
    DEL, or a lone surrogate (what JSON's \\ud800 escapes decode to); None if it can."""
    if text.isprintable():  # the common case: one pass in C, and none of those is printable
        return None
    found = UNSAFE_TEXT.search(text)
    if found is None:  # line breaks, tabs and other characters that merely do not print
        return None
    character = found.group()
    if "\ud800" <= character <= "\udfff":
        return _SURROGATE
    return _CONTROL.format(ord(character))


def _timestamp(value: Any, errors: list[FieldError]) -> float:
    if _is_number(value):
        if not _is_finite(value):
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
    if not _is_number(value) or not _is_finite(value):
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
    if not value.isprintable() and (reason := text_error(value)):
        errors.append((field, reason))
    return value


def _attributes(value: Any, limits: PointLimits, errors: list[FieldError]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(("attributes", "must be an object"))
        return {}
    if len(value) > limits.max_attributes:
        errors.append(("attributes", f"must have at most {limits.max_attributes} entries"))
        return {}

    for key, item in value.items():
        if len(key) > limits.max_name:
            errors.append(("attributes", f"keys must be at most {limits.max_name} characters"))
        if not key.isprintable() and (reason := text_error(key)):
            # The key itself cannot go into the reason: it would not encode, or not print.
            errors.append(("attributes", f"keys {reason}"))
            continue
        if isinstance(item, str):
            if len(item) > limits.max_text:
                message = f"must be at most {limits.max_text} characters"
                errors.append((f"attributes.{key}", message))
            if not item.isprintable() and (reason := text_error(item)):
                errors.append((f"attributes.{key}", reason))
            continue
        scalar = isinstance(item, bool) or (_is_number(item) and _is_finite(item))
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
