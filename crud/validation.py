"""Checks a call against the entity's schema before the backend sees it.

Errors come back as `[{field, message}]`, the same shape as the backend's own
400s once translated, so a caller handles both the same way.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from service.problems import Problem
from service.strict_json import MAX_INTEGER, MIN_INTEGER

from .models import CrudRequest, Filter, FilterOperator
from .query import LOOKUP_SUFFIX
from .registry import EntitySchema, FieldSpec

TWICE = "Filtered twice with this operator; give several values with `in` or `not_in`."

FieldErrors = list[dict[str, str]]


def check_write(schema: EntitySchema, data: dict[str, Any], *, partial: bool) -> None:
    """Unknown, read-only, mistyped and (unless partial) missing required fields answer 422."""
    errors: FieldErrors = []
    for name, value in data.items():
        spec = schema.fields.get(name)
        # Depth, NaN, number range and unsafe text were refused by the strict JSON reader.
        if spec is None:
            known = ", ".join(sorted(n for n in schema.fields if schema.writable(n)))
            errors.append(_error(name, f"Unknown field. Writable fields: {known}."))
        elif not schema.writable(name):
            errors.append(_error(name, "This field is read-only."))
        elif value is not None and (message := _type_error(spec, value)):
            errors.append(_error(name, message))
    if not partial:
        errors.extend(
            _error(name, "This field is required.")
            for name, spec in schema.fields.items()
            if spec.required and not spec.read_only and name not in data
        )
    _raise_if_any(errors, "The data does not fit the entity type.")


def check_query(schema: EntitySchema, request: CrudRequest) -> None:
    """Filters and sort fields must exist, and each operator must fit its field's type."""
    errors: FieldErrors = []
    lookups: set[tuple[str, FilterOperator]] = set()
    for index, item in enumerate(request.filters):
        lookup = (item.field, item.operator)
        # The backend reads one value per lookup: a second would silently replace the first.
        message = TWICE if lookup in lookups else _filter_error(schema, item)
        lookups.add(lookup)
        if message:
            errors.append(_error(f"filters.{index}.{item.field}", message))
    for index, sort in enumerate(request.sort):
        if sort.field not in schema.ordering:
            errors.append(_error(f"sort.{index}.{sort.field}", "Cannot sort by this field."))
    _raise_if_any(errors, "The query does not fit the entity type.")


def _filter_error(schema: EntitySchema, item: Filter) -> str | None:
    if item.field not in schema.fields:
        return "Unknown field."
    spec = schema.fields[item.field]
    if item.field + LOOKUP_SUFFIX[item.operator] not in schema.filters:
        return f"Operator {item.operator.value} does not fit a field of type {spec.type}."
    if item.operator is FilterOperator.IS_NULL:
        return None
    values = item.value if isinstance(item.value, list) else [item.value]
    for value in values:
        if isinstance(value, str) and "," in value and isinstance(item.value, list):
            return "A value in a list may not hold a comma."
        if message := _filter_value_error(spec, value, item.operator):
            return message
    return None


def _filter_value_error(spec: FieldSpec, value: Any, operator: FilterOperator) -> str | None:
    # Text operators take any text; the others take a value of the field's own type.
    if operator in (
        FilterOperator.CONTAINS,
        FilterOperator.STARTS_WITH,
        FilterOperator.ENDS_WITH,
    ):
        return None if isinstance(value, str) else "Must be a string."
    if spec.type in ("integer", "float", "decimal") and isinstance(value, str):
        try:
            value = int(value) if spec.type == "integer" else float(value)
        except ValueError:
            return "Must be an integer." if spec.type == "integer" else "Must be a number."
    if spec.type == "boolean" and isinstance(value, str) and value in ("true", "false"):
        return None
    bounds_free = FieldSpec(spec.name, spec.type, choices=spec.choices, max_length=None)
    return _type_error(bounds_free, value)


def _type_error(spec: FieldSpec, value: Any) -> str | None:
    kind = spec.type
    if kind in ("string", "email", "url", "slug", "uuid"):
        if not isinstance(value, str):
            return "Must be a string."
        if spec.max_length is not None and len(value) > spec.max_length:
            return f"Must be at most {spec.max_length} characters."
    elif kind == "boolean" and not isinstance(value, bool):
        return "Must be true or false."
    elif kind in ("integer", "float", "decimal"):
        return _number_error(spec, value)
    elif kind == "choice" and value not in spec.choices:
        return "Must be one of: " + ", ".join(str(choice) for choice in spec.choices) + "."
    elif kind in ("datetime", "date") and not _is_iso_datetime(value):
        return "Must be an ISO 8601 date-time."
    return None


def _number_error(spec: FieldSpec, value: Any) -> str | None:
    # bool is an int in Python; JSON's true is not a number.
    wants_integer = spec.type == "integer"
    allowed = int if wants_integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, allowed):
        return "Must be an integer." if wants_integer else "Must be a number."
    # A REST filter's text ("nan", "1e999") reaches here as a float; JSON bodies cannot.
    if isinstance(value, float) and not math.isfinite(value):
        return "Must be a finite number."
    if wants_integer and not MIN_INTEGER <= value <= MAX_INTEGER:
        return "The number is too large."
    if spec.min_value is not None and value < spec.min_value:
        return f"Must be at least {spec.min_value}."
    if spec.max_value is not None and value > spec.max_value:
        return f"Must be at most {spec.max_value}."
    return None


def _is_iso_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _raise_if_any(errors: FieldErrors, detail: str) -> None:
    if errors:
        raise Problem(422, detail, title="Validation failed", errors=errors)
