"""The enricher: service facts, client network and location, and time context in a time zone.

Service facts come from the backend's applications (cached, kept while the backend is down) or,
when one is configured, from a service map file read once at start-up.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import repeat
from operator import is_not, itemgetter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from telemetry.addresses import AddressInfo
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
_service = itemgetter("service")
# The fact fields a posted point does not carry; the environment it may.
_FACTS_NOT_POSTED = [field for field in FACT_FIELDS if field != "environment"]
# Zone offsets change on whole minutes, so one lookup per minute of event time is exact.
_OFFSET_STEP = 60


class Enricher:
    def __init__(
        self,
        applications: CachedRecords | None,
        *,
        service_map: Path | None = None,
        addresses: AddressInfo | None = None,
        time_zone: str = "UTC",
    ) -> None:
        self._applications = None if service_map is not None else applications
        self._facts = load_service_map(service_map) if service_map is not None else {}
        self._facts_version = -1
        self._addresses = addresses or AddressInfo()
        self._zone = None if time_zone == "UTC" else ZoneInfo(time_zone)

    @classmethod
    def from_settings(cls, settings: Any, applications: CachedRecords | None) -> Enricher:
        return cls(
            applications,
            service_map=settings.telemetry_service_map_file,
            addresses=AddressInfo(settings.telemetry_geoip_database),
            time_zone=settings.telemetry_time_zone,
        )

    def close(self) -> None:
        self._addresses.close()

    def facts(self, service: str) -> dict[str, Any]:
        self._reindex()
        return self._facts.get(service, _NO_FACTS)

    def enrich(self, batch: ProcessedBatch) -> None:
        self._reindex()
        seconds = np.floor(self._local(batch.ts)).astype(np.int64)
        hours = ((seconds // 3600) % 24).tolist()
        # 1970-01-01 was a Thursday: weekday 3 with Monday as 0, as in Python's datetime.
        weekdays = ((seconds // 86400 + 3) % 7).tolist()

        if _facts_unset(batch.points):
            self._enrich_by_sender(batch.points, hours, weekdays)
        else:  # a point brought facts of its own: fill in around them
            self._enrich_each(batch.points, hours, weekdays)

    def _enrich_by_sender(
        self, points: list[dict[str, Any]], hours: list[int], weekdays: list[int]
    ) -> None:
        """Few services and senders per batch: each one's fields are looked up once."""
        addresses = map(dict.get, points, repeat("client_address"))
        posted = map(is_not, map(dict.get, points, repeat("environment")), repeat(None))
        senders = list(zip(map(_service, points), addresses, posted, strict=True))
        context = {sender: self._context(*sender) for sender in set(senders)}
        contexts = map(context.__getitem__, senders)
        for point, hour, weekday, fields in zip(points, hours, weekdays, contexts, strict=True):
            point["hour_of_day"] = hour
            point["weekday"] = weekday
            point.update(fields)

    def _context(self, service: str, address: str | None, has_environment: bool) -> dict[str, Any]:
        """What a point of the service sent from the address gains, in the order it gains it;
        a point's own environment is kept."""
        facts = self._facts.get(service, _NO_FACTS)
        context = {field: facts.get(field) for field in FACT_FIELDS}
        if has_environment:
            del context["environment"]
        context.update(self._addresses.describe(address))
        return context

    def _enrich_each(
        self, points: list[dict[str, Any]], hours: list[int], weekdays: list[int]
    ) -> None:
        describe = self._addresses.describe
        for point, hour, weekday in zip(points, hours, weekdays, strict=True):
            point["hour_of_day"] = hour
            point["weekday"] = weekday
            facts = self._facts.get(point["service"], _NO_FACTS)
            for field in FACT_FIELDS:
                if point.get(field) is None:
                    point[field] = facts.get(field)
            point.update(describe(point.get("client_address")))

    def _local(self, ts: np.ndarray) -> np.ndarray:
        """Event times shifted into the configured zone, honouring its daylight-saving rules."""
        zone = self._zone
        if zone is None or len(ts) == 0:
            return ts
        minutes, where = np.unique(np.floor(ts / _OFFSET_STEP), return_inverse=True)
        offsets = np.fromiter(
            (_offset(minute * _OFFSET_STEP, zone) for minute in minutes.tolist()),
            dtype=np.float64,
            count=len(minutes),
        )
        return ts + offsets[where]

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


def load_service_map(path: Path) -> dict[str, dict[str, Any]]:
    """Read `{service: {team, tier, environment, version}}` from JSON; ValueError if malformed."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the service map {path}: {exc}") from exc
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ValueError(f"the service map {path} must map service names to objects")

    return {
        str(service): {
            "team": facts.get("team"),
            "tier": facts.get("tier"),
            "environment": facts.get("environment"),
            "service_version": facts.get("version", facts.get("app_version")),
        }
        for service, facts in raw.items()
    }


def _facts_unset(points: list[dict[str, Any]]) -> bool:
    """Whether no point has a value for a fact field other than the environment, as points from
    the collector have not."""
    count = len(points)
    return all(
        list(map(dict.get, points, repeat(field))).count(None) == count
        for field in _FACTS_NOT_POSTED
    )


def _offset(instant: float, zone: ZoneInfo) -> float:
    offset = datetime.fromtimestamp(instant, UTC).astimezone(zone).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0
