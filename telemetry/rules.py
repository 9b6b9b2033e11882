"""Threshold rules: those managed through the API and those read from the backend, as one kind.

A rule selects series by metric name (and optionally service and attributes), compares each
value with `operator value`, and raises an alert once the condition has held `for_seconds` in
event time. Its hysteresis is how far back across the threshold a value must go to resolve.
"""

from __future__ import annotations

import logging
import math
import operator
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from telemetry.points import SeriesKey
from telemetry.sources import CachedRecords

logger = logging.getLogger(__name__)

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "eq": operator.eq,
    "ne": operator.ne,
}
Operator = Literal["gt", "gte", "lt", "lte", "eq", "ne"]
Severity = Literal["info", "warning", "error", "critical"]
AttributeValue = str | bool | int | float


class Selector(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    service: str | None = Field(None, min_length=1, max_length=255)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict, max_length=64)


class RuleIn(BaseModel):
    """What `POST /telemetry/rules` takes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    selector: Selector
    operator: Operator
    value: float
    for_seconds: float = Field(0.0, ge=0, le=7 * 86_400)
    severity: Severity = "warning"
    hysteresis: float | None = Field(None, ge=0)

    @field_validator("value", "hysteresis")
    @classmethod
    def _finite(cls, number: float | None) -> float | None:
        if number is not None and not math.isfinite(number):
            raise ValueError("must be a finite number")
        return number


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    metric: str
    service: str | None
    attributes: dict[str, Any]
    operator: str
    value: float
    for_seconds: float
    severity: str
    hysteresis: float
    source: str  # "api" or "backend"
    backend_id: str | None = None
    compare: Callable[[float, float], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compare", OPERATORS[self.operator])

    def selects(self, key: SeriesKey) -> bool:
        service, _, attributes = key
        if self.service is not None and self.service != service:
            return False
        if not self.attributes:
            return True
        present = dict(attributes)
        return all(present.get(k, _MISSING) == v for k, v in self.attributes.items())

    def clears(self, value: float) -> bool:
        """Whether a breached rule's value is back far enough past the threshold to resolve."""
        if self.operator in ("gt", "gte"):
            return value < self.value - self.hysteresis
        if self.operator in ("lt", "lte"):
            return value > self.value + self.hysteresis
        return not self.compare(value, self.value)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "selector": {
                "name": self.metric,
                "service": self.service,
                "attributes": dict(self.attributes),
            },
            "operator": self.operator,
            "value": self.value,
            "for_seconds": self.for_seconds,
            "severity": self.severity,
            "hysteresis": self.hysteresis,
            "source": self.source,
        }


_MISSING = object()


def from_api(body: RuleIn, default_hysteresis: float, rule_id: str | None = None) -> Rule:
    hysteresis = body.hysteresis
    if hysteresis is None:
        hysteresis = default_hysteresis * abs(body.value)
    return Rule(
        id=rule_id or str(uuid.uuid4()),
        name=body.name,
        metric=body.selector.name,
        service=body.selector.service,
        attributes=dict(body.selector.attributes),
        operator=body.operator,
        value=body.value,
        for_seconds=body.for_seconds,
        severity=body.severity,
        hysteresis=hysteresis,
        source="api",
    )


def from_backend(record: dict[str, Any], default_hysteresis: float) -> Rule | None:
    """A backend alert rule (`metric_name operator threshold` over `evaluation_window`)."""
    if record.get("is_active") is False:
        return None
    try:
        threshold = float(record["threshold"])
        backend_id = record.get("id")
        return Rule(
            # Named by the backend's id, or by its name where a source gives no id.
            id=f"backend:{backend_id if backend_id is not None else record['name']}",
            name=str(record["name"]),
            metric=str(record["metric_name"]),
            service=None,
            attributes={},
            operator=str(record["operator"]),
            value=threshold,
            for_seconds=float(record.get("evaluation_window") or 0),
            severity=str(record.get("severity") or "warning"),
            hysteresis=default_hysteresis * abs(threshold),
            source="backend",
            backend_id=str(backend_id) if backend_id is not None else None,
        )
    except (KeyError, TypeError, ValueError):
        logger.warning("Ignoring alert rule %r: it lacks a usable field.", record.get("name"))
        return None


class RuleBook:
    """Every rule in force, indexed by metric name; the backend's reread when their cache moves."""

    def __init__(
        self, backend: CachedRecords | None, max_rules: int, default_hysteresis: float
    ) -> None:
        self._backend = backend
        self._backend_version = -1
        self.max_rules = max_rules
        self.default_hysteresis = default_hysteresis
        self._api: dict[str, Rule] = {}
        self._from_backend: list[Rule] = []
        self._by_metric: dict[str, list[Rule]] = {}

    @property
    def count(self) -> int:
        return len(self._api) + len(self._from_backend)

    def rules(self) -> list[Rule]:
        return [*self._api.values(), *self._from_backend]

    def get(self, rule_id: str) -> Rule | None:
        return self._api.get(rule_id)

    def add(self, rule: Rule) -> None:
        self._api[rule.id] = rule
        self._index()

    def remove(self, rule_id: str) -> Rule | None:
        rule = self._api.pop(rule_id, None)
        self._index()
        return rule

    def reindex(self) -> set[str]:
        """Re-read the backend's rules if their cache moved; the ids of rules now gone."""
        source = self._backend
        if source is None or source.version == self._backend_version:
            return set()
        before = {rule.id for rule in self._from_backend}
        parsed = (from_backend(record, self.default_hysteresis) for record in source.records)
        self._from_backend = [rule for rule in parsed if rule is not None]
        self._backend_version = source.version
        self._index()
        return before - {rule.id for rule in self._from_backend}

    def for_metric(self, name: str) -> list[Rule]:
        return self._by_metric.get(name, [])

    def _index(self) -> None:
        by_metric: dict[str, list[Rule]] = {}
        for rule in self.rules():
            by_metric.setdefault(rule.metric, []).append(rule)
        self._by_metric = by_metric
