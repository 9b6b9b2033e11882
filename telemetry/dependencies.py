"""The service dependency graph, learnt from parent and child spans in different services.

An edge `caller -> callee` is counted once per child span; its errors are the child spans that
failed. The graph is bounded: past `max_edges`, new edges are counted as refused.
"""

from __future__ import annotations

from typing import Any

from telemetry.points import iso


class ServiceGraph:
    def __init__(self, max_edges: int) -> None:
        self.max_edges = max_edges
        self._edges: dict[tuple[str, str], dict[str, Any]] = {}
        self._callers: dict[str, set[str]] = {}
        self.refused_edges = 0

    def callers(self, service: str) -> set[str]:
        return self._callers.get(service, set())

    def learn(self, parent: dict[str, Any], child: dict[str, Any]) -> None:
        caller, callee = parent["service"], child["service"]
        if caller == callee:
            return
        edge = self._edges.get((caller, callee))
        if edge is None:
            if len(self._edges) >= self.max_edges:
                self.refused_edges += 1
                return
            edge = self._edges[(caller, callee)] = {"calls": 0, "errors": 0, "last": child["ts"]}
            self._callers.setdefault(callee, set()).add(caller)

        edge["calls"] += 1
        edge["errors"] += child["error"]
        edge["last"] = max(edge["last"], child["ts"])

    def view(self, service: str | None = None) -> dict[str, Any]:
        """Nodes and edges, optionally only those touching one service."""
        edges = [
            {
                "caller": caller,
                "callee": callee,
                "calls": edge["calls"],
                "errors": edge["errors"],
                "last_seen": iso(edge["last"]),
            }
            for (caller, callee), edge in sorted(self._edges.items())
            if service is None or service in (caller, callee)
        ]
        services = sorted({edge[end] for edge in edges for end in ("caller", "callee")})
        return {"services": services, "edges": edges}
