"""The enricher: adds service facts from the backend's applications and the time context."""

from __future__ import annotations

from typing import Any

import numpy as np

from telemetry.processor import ProcessedBatch
from telemetry.sources import CachedRecords

# Point field -> field of the backend's application record. The release string is
# `app_version` there because every backend model's `version` is its write counter.
FACT_FIELDS = {
    "team": "team",
    "tier": "tier",
    "environment": "environment",
    "service_version": "app_version",
}
_NO_FACTS: dict[str, Any] = {}


class Enricher:
    def __init__(self, applications: CachedRecords | None) -> None:
        self._applications = applications
        self._facts: dict[str, dict[str, Any]] = {}
        self._facts_version = -1

    def facts(self, service: str) -> dict[str, Any]:
        self._reindex()
        return self._facts.get(service, _NO_FACTS)

    def enrich(self, batch: ProcessedBatch) -> None:
        self._reindex()
        # 1970-01-01 was a Thursday: weekday 3 with Monday as 0, as in Python's datetime.
        seconds = np.floor(batch.ts).astype(np.int64)
        hours = ((seconds // 3600) % 24).tolist()
        weekdays = ((seconds // 86400 + 3) % 7).tolist()

        for point, hour, weekday in zip(batch.points, hours, weekdays, strict=True):
            point["hour_of_day"] = hour
            point["weekday"] = weekday
            facts = self._facts.get(point["service"], _NO_FACTS)
            for field in FACT_FIELDS:
                if point.get(field) is None:
                    point[field] = facts.get(field)

    def _reindex(self) -> None:
        source = self._applications
        if source is None or source.version == self._facts_version:
            return
        self._facts = {
            str(record["name"]): {
                field: record.get(source_field) for field, source_field in FACT_FIELDS.items()
            }
            for record in source.records
            if record.get("name") is not None
        }
        self._facts_version = source.version
