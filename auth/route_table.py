"""Finds the route a request is for, before the router does, so that no body is read and no
handler runs for a caller who may not call it.

Routes are tried in the application's own order, only those whose first path segment fits.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from .policy import Requirement
from .scopes import Scope

UNMATCHED = "unmatched"  # the label of paths no route serves, whatever scanners try


@dataclass(frozen=True, slots=True)
class RouteRule:
    label: str  # "METHOD /template": the audit trail's entity type for refusals
    needs: frozenset[Scope] | None  # one of these; empty: any credential; None: public
    route: Any  # the route object, so that request metrics can name its template


@dataclass(frozen=True, slots=True)
class _Template:
    order: int
    pattern: re.Pattern[str]
    rules: dict[str, RouteRule]  # by method


class RouteTable:
    def __init__(self, templates: Iterable[_Template]) -> None:
        by_segment: dict[str, list[_Template]] = defaultdict(list)
        wildcards: list[_Template] = []
        for template in templates:
            segment = _first_segment(template.pattern.pattern)
            (by_segment[segment] if segment else wildcards).append(template)
        # A path's candidates: its segment's templates and the wildcard ones, in app order.
        self._candidates = {
            segment: sorted([*found, *wildcards], key=lambda t: t.order)
            for segment, found in by_segment.items()
        }
        self._wildcards = wildcards

    @classmethod
    def of(cls, app: FastAPI, scopes: dict[str, Requirement]) -> RouteTable:
        """The app's routes with their scopes; a route missing from `scopes` stops the start."""
        templates, missing = [], []
        for order, route in enumerate(iter_route_contexts(app.routes)):
            methods, path = getattr(route, "methods", None), getattr(route, "path", None)
            if not methods or path is None:
                continue
            rules = {}
            for method in sorted(methods):
                label = f"{method} {path}"
                # Starlette answers HEAD on its own GET routes (the docs): same rule as GET.
                key = label if label in scopes or method != "HEAD" else f"GET {path}"
                if key not in scopes:
                    missing.append(label)
                    continue
                needs = scopes[key]
                rules[method] = RouteRule(
                    label, None if needs is None else frozenset(needs), route.original_route
                )
            templates.append(_Template(order, route.path_regex, rules))
        if missing:
            raise RuntimeError(
                "routes without a scope in auth/policy.py ROUTE_SCOPES: " + ", ".join(missing)
            )
        return cls(templates)

    def match(self, method: str, path: str) -> RouteRule | None:
        """The rule of the route that serves this method and path; None: no route does."""
        segment = path.split("/", 2)[1] if path.startswith("/") else ""
        for template in self._candidates.get(segment, self._wildcards):
            rule = template.rules.get(method)
            if rule is not None and template.pattern.match(path):
                return rule
        return None


def _first_segment(pattern: str) -> str | None:
    """The literal first segment of a compiled route pattern; None when it is a parameter."""
    match = re.match(r"\^/((?:[A-Za-z0-9_]|\\.)*)(?=/|\$)", pattern)
    return re.sub(r"\\(.)", r"\1", match.group(1)) if match else None
