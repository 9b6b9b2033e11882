"""The correlator: assembles traces, links logs to them, learns the service graph, finds cascades.

Points are grouped by trace id (or, without one, by correlation id). A group becomes a
correlation once it holds an error; errors within the window of its first error are linked, and
that first error's service is the likely origin. Spans also feed the trace store, parent/child
pairs across services the dependency graph, and every error the cascade detector. All of it is
bounded: groups and traces are LRUs, the graph has an edge limit.
"""

from __future__ import annotations

from collections import OrderedDict
from operator import itemgetter
from typing import Any

from telemetry.cascades import CascadeDetector
from telemetry.dependencies import ServiceGraph
from telemetry.points import ERROR_SEVERITIES, is_error, iso
from telemetry.traces import TraceStore

MAX_MEMBERS = 50
_links = itemgetter("trace_id", "span_id", "correlation_id")
_type, _severity = itemgetter("type"), itemgetter("severity")

_MEMBER_FIELDS = ("type", "service", "name", "severity", "span_id", "parent_span_id", "message")


class Correlator:
    def __init__(
        self,
        window_seconds: float,
        *,
        max_traces: int = 5_000,
        max_spans_per_trace: int = 1_000,
        max_edges: int = 10_000,
        burst_errors: int = 3,
    ) -> None:
        self._window = window_seconds
        self._max_groups = max_traces
        self._groups: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._trace_of_correlation: OrderedDict[str, str] = OrderedDict()
        self.traces = TraceStore(max_traces, max_spans_per_trace)
        self.graph = ServiceGraph(max_edges)
        self.cascades = CascadeDetector(window_seconds, burst_errors, self.graph.callers)
        self.errors_seen = 0

    @classmethod
    def from_settings(cls, settings: Any) -> Correlator:
        return cls(
            settings.telemetry_correlation_window_seconds,
            max_traces=settings.telemetry_max_traces,
            max_spans_per_trace=settings.telemetry_max_spans_per_trace,
            max_edges=settings.telemetry_max_service_edges,
            burst_errors=settings.telemetry_cascade_burst_errors,
        )

    def __len__(self) -> int:
        return len(self._groups)

    def correlate(self, points: list[dict[str, Any]]) -> None:
        errors: list[tuple[float, str]] = []
        linked = points if _any_linked(points) else []
        for point in linked:
            error = is_error(point)
            if error:
                errors.append((point["ts"], point["service"]))
            trace_id = self._trace_id(point)
            if point["type"] == "trace" and trace_id is not None and point["span_id"] is not None:
                self._add_span(trace_id, point, error)
            elif trace_id is not None:
                self.traces.link(trace_id, _member(point, error))

            key = ("trace", trace_id) if trace_id is not None else _correlation_key(point)
            if key is not None:
                self._add(self._group(key), point, error)

        # Errors go to the cascade detector in event time, after the batch taught the graph.
        for ts, service in sorted(errors):
            self.cascades.observe(service, ts)
        while len(self._groups) > self._max_groups:
            self._groups.popitem(last=False)

    def correlations(
        self,
        service: str | None = None,
        limit: int = 100,
        *,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[dict[str, Any]]:
        """Error groups (kind trace or correlation) and cascades, the most recent first."""
        found: list[tuple[float, dict[str, Any]]] = []
        if kind in (None, "trace", "correlation"):
            for group in self._groups.values():
                if group["errors"] and kind in (None, group["kind"]):
                    found.append(self._describe(group))
        if kind in (None, "cascade"):
            found.extend(self.cascades.cascades(service, since, until))

        found = [
            (ts, item)
            for ts, item in found
            if (service is None or service in item["services"])
            and (since is None or ts >= since)
            and (until is None or ts <= until)
        ]
        found.sort(key=lambda pair: pair[0], reverse=True)
        return [item for _, item in found[:limit]]

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        return self.traces.assemble(trace_id)

    def _trace_id(self, point: dict[str, Any]) -> str | None:
        """The trace a point belongs to: its own, its span's, or its correlation id's."""
        trace_id = point["trace_id"]
        correlation_id = point["correlation_id"]
        if trace_id is not None:
            if correlation_id is not None:
                self._remember_correlation(correlation_id, trace_id)
            return trace_id
        if point["span_id"] is not None and point["type"] != "trace":
            trace_id = self.traces.trace_of_span(point["span_id"])
            if trace_id is not None:
                return trace_id
        if correlation_id is not None:
            return self._trace_of_correlation.get(correlation_id)
        return None

    def _remember_correlation(self, correlation_id: str, trace_id: str) -> None:
        self._trace_of_correlation[correlation_id] = trace_id
        self._trace_of_correlation.move_to_end(correlation_id)
        if len(self._trace_of_correlation) > self._max_groups:
            self._trace_of_correlation.popitem(last=False)

    def _add_span(self, trace_id: str, point: dict[str, Any], error: bool) -> None:
        span = {
            "span_id": point["span_id"],
            "parent_span_id": point["parent_span_id"],
            "service": point["service"],
            "name": point["name"],
            "ts": point["ts"],
            "duration_ms": point["duration_ms"],
            "error": error,
        }
        parent, children = self.traces.add_span(trace_id, span)
        if parent is not None:
            self.graph.learn(parent, span)
        for child in children:
            self.graph.learn(span, child)

    def _group(self, key: tuple[str, str]) -> dict[str, Any]:
        group = self._groups.get(key)
        if group is not None:
            self._groups.move_to_end(key)
            return group
        group = {
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

    def _add(self, group: dict[str, Any], point: dict[str, Any], error: bool) -> None:
        ts = point["ts"]
        group["first"] = min(group["first"], ts)
        group["last"] = max(group["last"], ts)
        group["services"].setdefault(point["service"], ts)
        group["member_count"] += 1
        if error:
            self.errors_seen += 1
            if len(group["errors"]) < MAX_MEMBERS:
                group["errors"].append((ts, point["service"]))
        if len(group["members"]) < MAX_MEMBERS:
            group["members"].append(_member(point, error))

    def _describe(self, group: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        errors = sorted(group["errors"])
        first_error_ts, origin = errors[0]
        linked: list[str] = []
        for ts, service in errors:
            if ts - first_error_ts <= self._window and service not in linked:
                linked.append(service)

        members = sorted(group["members"], key=lambda member: member["ts"])
        return first_error_ts, {
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
            "members": [member_view(member) for member in members],
        }


def _any_linked(points: list[dict[str, Any]]) -> bool:
    """Whether any point is a span, an error or carries an id: a batch of plain metrics (most
    batches) has nothing to correlate, which three checks in C settle."""
    if set(map(_links, points)) - {(None, None, None)}:
        return True
    if "trace" in set(map(_type, points)):
        return True
    return not ERROR_SEVERITIES.isdisjoint(map(_severity, points))


def _correlation_key(point: dict[str, Any]) -> tuple[str, str] | None:
    if point["correlation_id"] is not None:
        return ("correlation", point["correlation_id"])
    return None


def _member(point: dict[str, Any], error: bool) -> dict[str, Any]:
    member = {field: point.get(field) for field in _MEMBER_FIELDS}
    member["ts"] = point["ts"]
    member["error"] = error
    return member


def member_view(member: dict[str, Any]) -> dict[str, Any]:
    view = {field: member[field] for field in _MEMBER_FIELDS}
    view["timestamp"] = iso(member["ts"])
    view["error"] = member["error"]
    return view
