"""The collector's batch reader: a request's points read a batch at a time.

Each check below runs over a whole column (every name, every timestamp) in C: item by item,
the interpreter's cost per call and per field was most of the accept path's. A batch with
anything unusual in it is read item by item instead (points.py), so every verdict is still the
per-item function's.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sized
from functools import partial
from itertools import chain, repeat
from math import isfinite
from operator import add, is_not, itemgetter
from typing import Any

from telemetry.points import (
    DEFAULT_LIMITS,
    POINT_FIELDS,
    POINT_TYPES,
    TEXT_FIELDS,
    FieldError,
    PointLimits,
    PointReader,
    Readout,
    SeriesKey,
    TypedPoint,
    check_typed_point,
    dedup_key,
    is_clean_text,
    parse_instant,
    parse_point,
)

_NONE = type(None)
_STRING = {str}
_NUMBERS = {float, int, _NONE}
_ATTRIBUTE_VALUES = {str, float, int, bool}
_is_present = partial(is_not, None)
_NO_TEXT = {None, ""}
_TYPE, _NAME, _TS, _VALUE = (
    itemgetter("type"),
    itemgetter("name"),
    itemgetter("ts"),
    itemgetter("value"),
)
_DURATION, _SERVICE = itemgetter("duration_ms"), itemgetter("service")
_SEVERITY, _MESSAGE = itemgetter("severity"), itemgetter("message")
_ATTRIBUTES, _TEXTS = itemgetter("attributes"), itemgetter(*TEXT_FIELDS)
# dedup_key's fields but the attributes, in its order.
_DEDUP_FIELDS = itemgetter("type", "name", "ts", "value", "duration_ms", "message", *TEXT_FIELDS)
_BLANK_POINT = dict.fromkeys(POINT_FIELDS)


def parse_points(items: list[Any], now: float, limits: PointLimits = DEFAULT_LIMITS) -> Readout:
    """`parse_point` for each item of a batch: the valid points normalised, in order, and the
    index and field errors of every other item."""
    points = _plain_points(items, now, limits)
    if points is None:
        return read_each(parse_point, items, now, limits)
    return points, []


def check_typed_points(
    items: list[TypedPoint], now: float, limits: PointLimits = DEFAULT_LIMITS
) -> Readout:
    """`check_typed_point` for each item of a batch, read as `parse_points` reads."""
    points = _typed_points(items, now, limits)
    if points is None:
        return read_each(check_typed_point, items, now, limits)
    return points, []


def already_read(items: list[dict[str, Any]], now: float, limits: PointLimits) -> Readout:
    """Points that `parse_point` has read already, as a single posted point is to judge it."""
    return items, []


def read_each(read: PointReader, items: list[Any], now: float, limits: PointLimits) -> Readout:
    """A batch read item by item."""
    points: list[dict[str, Any]] = []
    rejections: list[tuple[int, list[FieldError]]] = []
    for index, item in enumerate(items):
        point, errors = read(item, now, limits)
        if point is None:
            rejections.append((index, errors))
        else:
            points.append(point)
    return points, rejections


def series_keys(points: list[dict[str, Any]]) -> list[SeriesKey]:
    """`series_key` of each point."""
    services, names = map(_SERVICE, points), map(_NAME, points)
    return list(zip(services, names, _sorted_attributes(points), strict=True))


def dedup_keys(points: list[dict[str, Any]]) -> list[int]:
    """`dedup_key` of each point: the same tuples, hashed."""
    if "trace" in set(map(_TYPE, points)):  # spans may be keyed by their ids instead
        return list(map(dedup_key, points))
    tuples = map(add, map(_DEDUP_FIELDS, points), zip(_sorted_attributes(points)))
    return list(map(hash, tuples))


def _sorted_attributes(points: list[dict[str, Any]]) -> Iterator[tuple[tuple[str, Any], ...]]:
    attributes = list(map(_ATTRIBUTES, points))
    if _longest(attributes) < 2:  # nothing to sort
        return map(tuple, map(dict.items, attributes))
    return map(tuple, map(sorted, map(dict.items, attributes)))


def _plain_points(items: list[Any], now: float, limits: PointLimits) -> list[dict[str, Any]] | None:
    """The batch's points when every item is an object whose fields all have their usual types
    and pass their checks; None when any item must be read on its own."""
    if not items or _kinds(items) != {dict}:
        return None
    posted = set().union(*items)

    kinds = _column(items, "type", "metric") if "type" in posted else None
    if kinds is not None and not (_kinds(kinds) == _STRING and POINT_TYPES.issuperset(kinds)):
        return None
    names = _column(items, "name")
    if _kinds(names) != _STRING or _longest(names) > limits.max_name:
        return None
    if not all(map(str.strip, names)):
        return None
    stamps = _column(items, "timestamp", now) if "timestamp" in posted else [now] * len(items)
    stamps = _plain_times(stamps, now, limits)
    values = _plain_numbers(_column(items, "value") if "value" in posted else [None] * len(items))
    durations = _plain_numbers(_column(items, "duration_ms")) if "duration_ms" in posted else []
    if stamps is None or values is None or durations is None:
        return None
    if None in values and _missing_metric_value(kinds, values):
        return None
    if min(filter(_is_present, durations), default=0.0) < 0:
        return None

    strings = [names]  # every string of the batch, for one check for control characters
    columns = {} if kinds is None else {"type": kinds}
    if durations:
        columns["duration_ms"] = durations
    for field, limit in _text_limits(limits):
        if field in posted:
            column = columns[field] = _column(items, field)
            if not _plain_texts(column, limit):
                return None
            strings.append(list(filter(None, column)))
    attributes = _plain_attributes(items, posted, limits, strings)
    if attributes is None or not _clean_texts(strings):
        return None
    return _build_points(names, stamps, values, attributes, columns)


def _typed_points(items: list[Any], now: float, limits: PointLimits) -> list[dict[str, Any]] | None:
    """The batch's points, normalised in place, when every item is a TypedPoint within its
    limits (the checks of within_limits); None when any item must be read on its own."""
    if not items or _kinds(items) != {dict}:
        return None

    # Sets where values repeat: a resource's service, a metric's name, an attribute's key.
    names = set(map(_NAME, items))
    if _longest(names) > limits.max_name or not all(map(str.strip, names)):
        return None
    values = list(map(_VALUE, items))
    if None in values and _missing_metric_value(list(map(_TYPE, items)), values):
        return None
    durations = list(filter(_is_present, map(_DURATION, items)))
    if not isfinite(sum(filter(None, values)) + sum(durations)) or min(durations, default=0) < 0:
        return None
    stamps = list(map(_TS, items))
    columns = {}
    if None in stamps:  # the arrival time
        stamps = columns["ts"] = [now if ts is None else ts for ts in stamps]
    if _plain_times(stamps, now, limits) is None:
        return None

    messages = list(filter(None, map(_MESSAGE, items)))
    texts = set(chain.from_iterable(map(_TEXTS, items))) - _NO_TEXT
    if _longest(messages) > limits.max_message or _longest(texts) > limits.max_text:
        return None
    strings = [names, messages, texts]
    if not _typed_attributes(items, limits, strings) or not _clean_texts(strings):
        return None

    services, severities = list(map(_SERVICE, items)), list(map(_SEVERITY, items))
    if None in services:
        columns["service"] = services
    if any(severities):
        columns["severity"] = severities
    _set_columns(items, columns)
    return items


def _kinds(values: Iterable[Any]) -> set[type]:
    return set(map(type, values))


def _column(items: list[dict[str, Any]], field: str, default: Any = None) -> list[Any]:
    return list(map(dict.get, items, repeat(field), repeat(default)))


def _longest(values: Iterable[Sized]) -> int:
    return max(map(len, values), default=0)


def _text_limits(limits: PointLimits) -> Iterator[tuple[str, int]]:
    yield from zip(TEXT_FIELDS, repeat(limits.max_text))
    yield "message", limits.max_message


def _plain_texts(column: list[Any], limit: int) -> bool:
    """Whether the column holds only strings (and None) of at most `limit` characters."""
    if not _kinds(column) <= {str, _NONE}:
        return False
    return _longest(list(filter(None, column))) <= limit


def _clean_texts(strings: list[Collection[str]]) -> bool:
    """Whether no string holds a character `text_error` refuses."""
    if "".join(chain.from_iterable(strings)).isprintable():  # one pass settles nearly all
        return True
    return all(map(is_clean_text, chain.from_iterable(strings)))


def _plain_times(stamps: list[Any], now: float, limits: PointLimits) -> list[float] | None:
    """Timestamps as Unix seconds when each is a number or a date-time within the allowed age."""
    if _kinds(stamps) != {float}:
        if not _kinds(stamps) <= {float, int, str}:
            return None
        try:
            stamps = [parse_instant(ts) if type(ts) is str else float(ts) for ts in stamps]
        except (ValueError, OverflowError):
            return None
    # A sum is finite only if every term is; one that overflows is merely read item by item.
    if not isfinite(sum(stamps)):
        return None
    earliest = min(stamps)
    if earliest < 0 or max(stamps) - now > limits.max_future_seconds:
        return None
    if limits.max_age_seconds is not None and now - earliest > limits.max_age_seconds:
        return None
    return stamps


def _plain_numbers(column: list[Any]) -> list[float | None] | None:
    """The column as finite floats (and None), if it holds only finite numbers (and None)."""
    kinds = _kinds(column)
    if not kinds <= {float, _NONE}:
        if not kinds <= _NUMBERS:
            return None
        try:
            column = [value if value is None else float(value) for value in column]
        except OverflowError:
            return None
    if not isfinite(sum(filter(None, column))):
        return None
    return column


def _missing_metric_value(kinds: list[str] | None, values: list[float | None]) -> bool:
    if kinds is None:  # every point is a metric
        return True
    return any(
        kind == "metric" and value is None for kind, value in zip(kinds, values, strict=True)
    )


def _plain_attributes(
    items: list[dict[str, Any]],
    posted: set[str],
    limits: PointLimits,
    strings: list[Collection[str]],
) -> list[dict[str, Any]] | None:
    """Each item's attributes, a new empty dict where it has none, when all pass their checks;
    their keys and texts join `strings`."""
    if "attributes" not in posted:
        return [{} for _ in items]
    column = _column(items, "attributes")
    kinds = _kinds(column)
    if not kinds <= {dict, _NONE}:
        return None
    if _NONE in kinds:
        column = [{} if attributes is None else attributes for attributes in column]
    if max(map(len, column)) > limits.max_attributes:
        return None

    keys = list(chain.from_iterable(column))
    if keys and (_kinds(keys) != _STRING or _longest(keys) > limits.max_name):
        return None
    values = list(chain.from_iterable(map(dict.values, column)))
    texts = _attribute_texts(values, limits)
    if texts is None:
        return None
    strings += (keys, texts)
    return column


def _typed_attributes(
    items: list[TypedPoint], limits: PointLimits, strings: list[Collection[str]]
) -> bool:
    """Whether every point's attributes are within their limits; keys and texts join `strings`.
    Typed values are all hashable, and equal values pass or fail alike: each is checked once."""
    column = list(map(_ATTRIBUTES, items))
    if _longest(column) > limits.max_attributes:
        return False
    keys = set(chain.from_iterable(column))
    if _longest(keys) > limits.max_name:
        return False
    texts = _attribute_texts(set(chain.from_iterable(map(dict.values, column))), limits)
    if texts is None:
        return False
    strings += (keys, texts)
    return True


def _attribute_texts(values: Collection[Any], limits: PointLimits) -> Collection[str] | None:
    """The string values, if every value is a string, a boolean or a finite number and every
    string is within the text limit; None otherwise."""
    kinds = _kinds(values)
    if not kinds <= _ATTRIBUTE_VALUES:
        return None
    if kinds <= _STRING:
        texts = values
    else:
        texts = [value for value in values if type(value) is str]
        numbers = [value for value in values if type(value) is float or type(value) is int]
        try:
            if not isfinite(sum(map(float, numbers))):
                return None
        except OverflowError:  # an integer no float can hold
            return None
    return texts if _longest(texts) <= limits.max_text else None


def _build_points(
    names: list[str],
    stamps: list[float],
    values: list[float | None],
    attributes: list[dict[str, Any]],
    columns: dict[str, list[Any]],
) -> list[dict[str, Any]]:
    """Normalised points from checked columns; `columns` holds the other posted fields."""
    # A copy of a blank point, then the fields set: far cheaper than a 16-key dict display.
    blank = {**_BLANK_POINT, "type": "metric", "service": "unknown"}
    points = []
    for name, ts, value, point_attributes in zip(names, stamps, values, attributes, strict=True):
        point = blank.copy()
        point["name"] = name
        point["ts"] = ts
        point["value"] = value
        point["attributes"] = point_attributes
        points.append(point)

    _set_columns(points, columns)
    return points


def _set_columns(points: list[dict[str, Any]], columns: dict[str, list[Any]]) -> None:
    """Set each column's values in the points, normalised as `parse_point` does: `unknown` for
    a missing service, severities in lower case."""
    services = columns.get("service")
    if services is not None and None in services:
        columns["service"] = ["unknown" if service is None else service for service in services]
    severities = columns.get("severity")
    if severities is not None:
        columns["severity"] = [None if text is None else text.lower() for text in severities]
    for field, column in columns.items():
        for point, value in zip(points, column, strict=True):
            point[field] = value
