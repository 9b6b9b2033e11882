"""Bounded cardinality: how many series, and how many values per attribute key per metric.

Past either bound a point joins an overflow series instead of opening a new one, as the
OpenTelemetry SDK does with `otel.metric.overflow`, so memory stops growing while the point is
still counted.
"""

from __future__ import annotations

import logging

from telemetry.points import SeriesKey

logger = logging.getLogger(__name__)

OVERFLOW_ATTRIBUTES = (("otel.metric.overflow", True),)
# When even the series bound is reached, every new series shares this single one.
OVERFLOW_SERIES: SeriesKey = ("overflow", "overflow", OVERFLOW_ATTRIBUTES)


class CardinalityLimit:
    def __init__(self, max_series: int, max_values_per_key: int) -> None:
        self.max_series = max_series
        self.max_values_per_key = max_values_per_key
        self._known: set[SeriesKey] = set()
        self._values: dict[tuple[str, str], set[object]] = {}
        self.overflow_points = 0
        self._full_logged = False

    def __len__(self) -> int:
        return len(self._known)

    def admit_all(self, keys: list[SeriesKey]) -> list[SeriesKey]:
        """`admit` for each key in turn."""
        if self._known.issuperset(keys):  # the usual case: every series seen before
            return keys
        return [self.admit(key) for key in keys]

    def admit(self, key: SeriesKey) -> SeriesKey:
        """The series the point is counted in: its own, or an overflow series."""
        if key in self._known:
            return key

        service, name, attributes = key
        if len(self._known) >= self.max_series:
            return self._overflow(OVERFLOW_SERIES, "series")
        if not self._values_fit(name, attributes):
            return self._overflow((service, name, OVERFLOW_ATTRIBUTES), "attribute values")

        for attribute, value in attributes:
            self._values.setdefault((name, attribute), set()).add(value)
        self._known.add(key)
        return key

    def _values_fit(self, name: str, attributes: tuple[tuple[str, object], ...]) -> bool:
        for attribute, value in attributes:
            seen = self._values.get((name, attribute))
            if seen is not None and value not in seen and len(seen) >= self.max_values_per_key:
                return False
        return True

    def _overflow(self, key: SeriesKey, bound: str) -> SeriesKey:
        self.overflow_points += 1
        if key not in self._known:
            # Overflow series are admitted past the bound: at most one per metric plus one.
            self._known.add(key)
        if not self._full_logged:
            self._full_logged = True
            logger.warning("Series cardinality bound on %s reached; using overflow series.", bound)
        return key
