"""The REST read, `GET /api/<app>/<resource>/<id>/`, served without FastAPI's per-request work.

A cache miss is the middleware's latency budget, and FastAPI spends part of it on every call
solving the endpoint's parameters (typed, validated, documented) that a read does not need
solved again: its three path parameters are checked here by one regular expression built
from the parameters' own patterns and lengths. Only a path whose parameters are all valid
matches; any other falls through to the documented route in rest.py, so a bad parameter is
still FastAPI's own 422 naming it. Both routes run `read_entity`, so they answer alike.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from service.request_limits import check_query_text

from .models import ENTITY_ID_PATTERN
from .rest import (
    APP_PATTERN,
    ENTITY_ID_MAX_LENGTH,
    NAME_MAX_LENGTH,
    READ_PATH,
    RESOURCE_PATTERN,
    read_entity,
)


def _segment(name: str, pattern: str, max_length: int) -> str:
    """A path segment named `name` that the parameter's own anchored `pattern` matches whole,
    at most `max_length` characters long (a lookahead up to the next slash)."""
    return rf"(?P<{name}>(?=[^/]{{1,{max_length}}}/){pattern.removeprefix('^').removesuffix('$')})"


VALID_READ_PATH = re.compile(
    "^/api/"
    + _segment("app", APP_PATTERN, NAME_MAX_LENGTH)
    + "/"
    + _segment("resource", RESOURCE_PATTERN, NAME_MAX_LENGTH)
    + "/"
    + _segment("entity_id", ENTITY_ID_PATTERN, ENTITY_ID_MAX_LENGTH)
    + "/$"
)


class EntityReadRoute(BaseRoute):
    """Serves rest.py's read route for paths whose parameters are valid; put it first."""

    # The read route's template: the authentication's route table finds this route's scope
    # by it, and request metrics name it, as they do when the documented route serves.
    path = READ_PATH
    methods = frozenset({"GET"})
    path_regex = VALID_READ_PATH

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] != "GET":
            return Match.NONE, {}
        found = VALID_READ_PATH.match(scope["path"])
        if found is None:
            return Match.NONE, {}
        return Match.FULL, {"path_params": found.groupdict(), "route": self}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        # Not a name of its own: `url_for("read_entity", ...)` goes on to the documented route.
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        check_query_text(scope.get("query_string", b""))  # as CheckedRoute does
        params = scope["path_params"]
        request = Request(scope, receive)
        app, resource, entity_id = params["app"], params["resource"], params["entity_id"]
        response = await read_entity(app, resource, entity_id, request)
        await response(scope, receive, send)
