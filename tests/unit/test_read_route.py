"""The lean REST read route takes exactly the paths the documented read route would serve."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from starlette.routing import Match

from crud.read_route import EntityReadRoute
from crud.rest import App, EntityId, Resource
from main import create_app
from service.settings import Settings

# FastAPI's rules for the read route's path: Starlette's template, then each parameter's type.
TEMPLATE = re.compile(r"^/api/(?P<app>[^/]+)/(?P<resource>[^/]+)/(?P<entity_id>[^/]+)/$")
PARAMETERS = {
    "app": TypeAdapter(App),
    "resource": TypeAdapter(Resource),
    "entity_id": TypeAdapter(EntityId),
}

# Characters on both sides of every rule: the classes, their neighbours, `/` and a newline.
segment = st.text(alphabet="az09_-AZ!/é\n", max_size=3) | st.builds(
    lambda char, size: char * size,
    st.sampled_from("aA0-_"),
    st.sampled_from([1, 49, 50, 51, 99, 100, 101]),
)


def documented_route_serves(path: str) -> bool:
    found = TEMPLATE.match(path)
    if found is None:
        return False
    try:
        for name, adapter in PARAMETERS.items():
            adapter.validate_python(found.group(name))
    except ValidationError:
        return False
    return True


def scope_of(path: str, method: str = "GET") -> dict:
    return {"type": "http", "method": method, "path": path}


@settings(max_examples=500)
@given(app=segment, resource=segment, entity_id=segment, tail=st.sampled_from(["/", "", "/\n"]))
def test_matches_exactly_the_paths_whose_parameters_fastapi_accepts(
    app: str, resource: str, entity_id: str, tail: str
) -> None:
    path = f"/api/{app}/{resource}/{entity_id}{tail}"

    match, _ = EntityReadRoute().matches(scope_of(path))

    assert (match is Match.FULL) == documented_route_serves(path)


def test_a_match_carries_the_parameters_and_names_the_template() -> None:
    match, child_scope = EntityReadRoute().matches(scope_of("/api/notification/channels/ab-12/"))

    assert match is Match.FULL
    assert child_scope["path_params"] == {
        "app": "notification",
        "resource": "channels",
        "entity_id": "ab-12",
    }
    assert child_scope["route"].path == "/api/{app}/{resource}/{entity_id}/"


def test_urls_are_still_reversed_by_name() -> None:
    app = create_app(Settings())

    path = app.url_path_for("read_entity", app="notification", resource="channels", entity_id="x")

    assert path == "/api/notification/channels/x/"
    assert app.url_path_for("list_entities", app="a", resource="b") == "/api/a/b/"


def test_other_methods_are_left_to_the_documented_routes() -> None:
    for method in ("HEAD", "PATCH", "PUT", "DELETE", "POST"):
        match, _ = EntityReadRoute().matches(scope_of("/api/notification/channels/1/", method))
        assert match is Match.NONE
