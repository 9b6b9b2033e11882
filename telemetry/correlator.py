"""The correlator: groups points by trace or correlation id and links errors across services.

A group becomes a correlation once it holds an error; the errors within the correlation window
of its first error are linked, and the service of that first error is the likely origin.
Memory is bounded: the least recently touched groups are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from telemetry.points import is_error, iso

MAX_GROUPS = 5_000
MAX_MEMBERS = 50

_MEMBER_FIELDS = ("type", "service", "name", "severity", "span_id", "parent_span_id", "message")


class Correlator:
    def __init__(self, window_seconds: float) -> None:
        self._window = window_seconds
        self._groups: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self.errors_seen = 0

    def __len__(self) -> int:
        return len(self._groups)

    def correlate(self, points: list[dict[str, Any]]) -> None:
        for point in points:
            key = _group_key(point)
            if key is None:
                continue
            group = self._groups.get(key)
            if group is None:
                group = self._open(key)
            else:
                self._groups.move_to_end(key)
            self._add(group, point)

        while len(self._groups) > MAX_GROUPS:
            self._groups.popitem(last=False)

    def correlations(self, service: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Groups holding errors, the most recent first error first."""
        found = [self._describe(group) for group in self._groups.values() if group["errors"]]
        if service is not None:
            found = [item for item in found if service in item["services"]]
        found.sort(key=lambda item: item["first_error_ts"], reverse=True)
        for item in found:
            item.pop("first_error_ts")
        return found[:limit]

    def _open(self, key: tuple[str, str]) -> dict[str, Any]:
        group: dict[str, Any] = {
            "kind": key[0],
            "id": key[1],
            "first": float("inf"),
            "last": float("-inf"),
            "services": {},
            "errors": [],
            "members": [],
            "member_count": 0,
        }
        self._groups[key] = group
        return group

    def _add(self, group: dict[str, Any], point: dict[str, Any]) -> None:
        ts = point["ts"]
        group["first"] = min(group["first"], ts)
        group["last"] = max(group["last"], ts)
        group["services"].setdefault(point["service"], ts)
        group["member_count"] += 1
        error = is_error(point)
        if error:
            self.errors_seen += 1
            if len(group["errors"]) < MAX_MEMBERS:
                group["errors"].append((ts, point["service"]))
        if len(group["members"]) < MAX_MEMBERS:
            member = {field: point.get(field) for field in _MEMBER_FIELDS}
            member["ts"] = ts
            member["error"] = error
            group["members"].append(member)

    def _describe(self, group: dict[str, Any]) -> dict[str, Any]:
        errors = sorted(group["errors"])
        first_error_ts, origin = errors[0]
        linked: list[str] = []
        for ts, service in errors:
            if ts - first_error_ts <= self._window and service not in linked:
                linked.append(service)

        members = sorted(group["members"], key=lambda member: member["ts"])
        return {
            "kind": group["kind"],
            "id": group["id"],
            "first_seen": iso(group["first"]),
            "last_seen": iso(group["last"]),
            "services": sorted(group["services"]),
            "error_services": linked,
            "origin_service": origin,
            "cross_service": len(linked) > 1,
            "error_count": len(errors),
            "member_count": group["member_count"],
            "members": [_member_view(member) for member in members],
            "first_error_ts": first_error_ts,
        }


def _group_key(point: dict[str, Any]) -> tuple[str, str] | None:
    if point["trace_id"] is not None:
        return ("trace", point["trace_id"])
    if point["correlation_id"] is not None:
        return ("correlation", point["correlation_id"])
    return None


def _member_view(member: dict[str, Any]) -> dict[str, Any]:
    view = {field: member[field] for field in _MEMBER_FIELDS}
    view["timestamp"] = iso(member["ts"])
    view["error"] = member["error"]
    return view
