"""Property: the REST and `/crud` surfaces give the same answer for the same query."""

from __future__ import annotations

import uuid

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crud.query import LOOKUP_SUFFIX

APPS = "/api/appmetrics/applications/"
TIERS = ["critical", "high", "medium", "low"]


@pytest.fixture(scope="module")
def team(middleware) -> str:
    team = f"prop-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=middleware.url, headers=middleware.headers, timeout=30) as api:
        for index in range(6):
            data = {
                "name": f"{team}-svc{index}",
                "team": team,
                "port": 1000 + 100 * index,
                "tier": TIERS[index % 4],
                "host": f"host{index % 3}.local",
            }
            assert api.post(APPS, json=data).status_code == 201
    return team


port_filters = st.builds(
    lambda op, value: {"field": "port", "operator": op, "value": value},
    st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
    st.integers(900, 1700),
)
port_lists = st.builds(
    lambda op, values: {"field": "port", "operator": op, "value": values},
    st.sampled_from(["in", "not_in"]),
    st.lists(st.integers(10, 17).map(lambda n: n * 100), min_size=1, max_size=3),
)
host_filters = st.builds(
    lambda op, value: {"field": "host", "operator": op, "value": value},
    st.sampled_from(["eq", "contains", "starts_with", "ends_with"]),
    st.sampled_from(["host1.local", "host", "1", ".local", "HOST2"]),
)
tier_filters = st.builds(
    lambda op, value: {"field": "tier", "operator": op, "value": value},
    st.sampled_from(["eq", "ne"]),
    st.sampled_from(TIERS),
)
queries = st.fixed_dictionaries(
    {
        # One filter per field and operator: a second is a 422 that each surface words in its
        # own terms (test_crud_rules.py).
        "filters": st.lists(
            st.one_of(port_filters, port_lists, host_filters, tier_filters),
            max_size=3,
            unique_by=lambda item: (item["field"], item["operator"]),
        ),
        "sort": st.sampled_from(["port", "-port", "name", "-host,name"]),
        "page_size": st.integers(1, 4),
        "page": st.integers(1, 2),
    }
)


def rest_params(team: str, query: dict) -> list[tuple[str, str]]:
    params = [("team", team), ("ordering", query["sort"])]
    params += [("page", str(query["page"])), ("page_size", str(query["page_size"]))]
    for item in query["filters"]:
        value = item["value"]
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        params.append((item["field"] + LOOKUP_SUFFIX[item["operator"]], text))
    return params


def crud_body(team: str, query: dict) -> dict:
    sort = [
        {"field": part.lstrip("-"), "order": "desc" if part.startswith("-") else "asc"}
        for part in query["sort"].split(",")
    ]
    return {
        "operation": "list",
        "entity_type": "appmetrics.applications",
        "filters": [{"field": "team", "operator": "eq", "value": team}, *query["filters"]],
        "sort": sort,
        "page": query["page"],
        "page_size": query["page_size"],
    }


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=queries)
def test_rest_and_crud_agree(api: httpx.Client, team: str, query: dict) -> None:
    rest = api.get(APPS, params=rest_params(team, query))
    crud = api.post("/crud", json=crud_body(team, query))
    assert rest.status_code == crud.status_code
    rest_body, crud_body_ = rest.json(), crud.json()
    rest_body.pop("instance", None), crud_body_.pop("instance", None)  # the path differs
    assert rest_body == crud_body_
