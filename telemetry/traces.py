"""Span trees by trace id: kept in a bounded LRU of traces and assembled on request.

A trace holds its spans, the logs and events linked to it, and the children waiting for a parent
that has not arrived yet, so the tree comes out right whatever order the spans arrive in.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from telemetry.points import iso

MAX_LINKED = 200  # logs and events kept per trace


class Trace:
    __slots__ = ("trace_id", "spans", "children", "linked", "dropped_spans")

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id
        self.spans: dict[str, dict[str, Any]] = {}
        self.children: dict[str, list[str]] = {}  # parent span id -> child span ids
        self.linked: list[dict[str, Any]] = []
        self.dropped_spans = 0


class TraceStore:
    def __init__(self, max_traces: int, max_spans: int) -> None:
        self.max_traces = max_traces
        self.max_spans = max_spans
        self._traces: OrderedDict[str, Trace] = OrderedDict()
        self._span_owner: dict[str, str] = {}  # span id -> trace id, for logs without trace id

    def __len__(self) -> int:
        return len(self._traces)

    def trace_of_span(self, span_id: str) -> str | None:
        return self._span_owner.get(span_id)

    def add_span(self, trace_id: str, span: dict[str, Any]) -> tuple[dict[str, Any] | None, list]:
        """Store a span; return its parent and its already stored children (for the graph)."""
        trace = self._touch(trace_id)
        span_id = span["span_id"]
        if span_id not in trace.spans and len(trace.spans) >= self.max_spans:
            trace.dropped_spans += 1
            return None, []

        new = span_id not in trace.spans
        trace.spans[span_id] = span
        self._span_owner[span_id] = trace_id
        parent_id = span["parent_span_id"]
        if parent_id is not None and new:
            trace.children.setdefault(parent_id, []).append(span_id)
        children = [trace.spans[c] for c in trace.children.get(span_id, ()) if c in trace.spans]
        parent = trace.spans.get(parent_id) if parent_id is not None else None
        return parent, children

    def link(self, trace_id: str, entry: dict[str, Any]) -> None:
        trace = self._touch(trace_id)
        if len(trace.linked) < MAX_LINKED:
            trace.linked.append(entry)

    def assemble(self, trace_id: str) -> dict[str, Any] | None:
        trace = self._traces.get(trace_id)
        if trace is None:
            return None
        return _assemble(trace)

    def _touch(self, trace_id: str) -> Trace:
        trace = self._traces.get(trace_id)
        if trace is not None:
            self._traces.move_to_end(trace_id)
            return trace

        trace = self._traces[trace_id] = Trace(trace_id)
        while len(self._traces) > self.max_traces:
            _, evicted = self._traces.popitem(last=False)
            for span_id in evicted.spans:
                self._span_owner.pop(span_id, None)
        return trace


def _assemble(trace: Trace) -> dict[str, Any]:
    spans = trace.spans
    depth = _depths(trace)
    roots = [s for s in spans.values() if s["parent_span_id"] not in spans]
    roots.sort(key=lambda s: (s["ts"], s["span_id"]))

    starts = [s["ts"] for s in spans.values()]
    ends = [_end(s) for s in spans.values()]
    errors = [s for s in spans.values() if s["error"]]
    # The deepest failing span is where the failure most likely began; ties go to the earliest.
    root_cause = min(errors, key=lambda s: (-depth[s["span_id"]], s["ts"]), default=None)

    return {
        "trace_id": trace.trace_id,
        "span_count": len(spans),
        "dropped_spans": trace.dropped_spans,
        "start": iso(min(starts)) if spans else None,
        "duration_ms": round((max(ends) - min(starts)) * 1000.0, 3) if spans else None,
        "services": sorted({s["service"] for s in spans.values()}),
        "critical_path": [_span_view(s, depth) for s in _critical_path(trace, roots)],
        "error_spans": [_span_view(s, depth) for s in sorted(errors, key=_start)],
        "root_cause": _span_view(root_cause, depth) if root_cause is not None else None,
        "tree": [_subtree(trace, root, depth) for root in roots],
        "linked": [_linked_view(entry) for entry in sorted(trace.linked, key=_start)],
    }


def _depths(trace: Trace) -> dict[str, int]:
    """Depth of every span below its root, walking parents (guarded against cycles)."""
    spans = trace.spans
    depth: dict[str, int] = {}
    for span_id in spans:
        chain = []
        current: str | None = span_id
        while current in spans and current not in depth and current not in chain:
            chain.append(current)
            current = spans[current]["parent_span_id"]
        base = depth.get(current, -1) if current is not None else -1
        for offset, member in enumerate(reversed(chain), start=1):
            depth[member] = base + offset
    return depth


def _critical_path(trace: Trace, roots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """From the root that ends last, follow at each level the child that ends last."""
    if not roots:
        return []
    path = [max(roots, key=_end)]
    seen = {path[0]["span_id"]}
    while True:
        kids = [
            trace.spans[c]
            for c in trace.children.get(path[-1]["span_id"], ())
            if c in trace.spans and c not in seen
        ]
        if not kids:
            return path
        path.append(max(kids, key=_end))
        seen.add(path[-1]["span_id"])


def _subtree(trace: Trace, span: dict[str, Any], depth: dict[str, int]) -> dict[str, Any]:
    # Iterative, because an agent can send a chain deeper than Python's recursion limit.
    root = _span_view(span, depth)
    stack = [(span, root)]
    visited = {span["span_id"]}
    while stack:
        current, view = stack.pop()
        kids = [trace.spans[c] for c in trace.children.get(current["span_id"], ())]
        view["children"] = []
        for kid in sorted((k for k in kids if k["span_id"] not in visited), key=_start):
            visited.add(kid["span_id"])
            kid_view = _span_view(kid, depth)
            view["children"].append(kid_view)
            stack.append((kid, kid_view))
    return root


def _span_view(span: dict[str, Any], depth: dict[str, int]) -> dict[str, Any]:
    return {
        "span_id": span["span_id"],
        "parent_span_id": span["parent_span_id"],
        "service": span["service"],
        "name": span["name"],
        "timestamp": iso(span["ts"]),
        "duration_ms": span["duration_ms"],
        "error": span["error"],
        "depth": depth.get(span["span_id"], 0),
    }


def _linked_view(entry: dict[str, Any]) -> dict[str, Any]:
    view = {field: value for field, value in entry.items() if field != "ts"}
    view["timestamp"] = iso(entry["ts"])
    return view


def _start(span: dict[str, Any]) -> float:
    return span["ts"]


def _end(span: dict[str, Any]) -> float:
    return span["ts"] + (span["duration_ms"] or 0.0) / 1000.0
