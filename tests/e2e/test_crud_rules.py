"""Entity rules: every filter operator, validation before the backend, pagination edges."""

from __future__ import annotations

import uuid

import httpx
import pytest

APPS = "appmetrics.applications"


@pytest.fixture(scope="module")
def team(middleware) -> str:
    """Three applications under one team name, so filters can be checked exactly."""
    team = f"team-{uuid.uuid4().hex[:8]}"
    rows = [
        ("alpha-api", 80, "critical", "2026-01-01T00:00:00Z"),
        ("beta-worker", 8080, "high", None),
        ("gamma-API", 9090, "low", "2026-06-01T00:00:00Z"),
    ]
    with httpx.Client(base_url=middleware.url, headers=middleware.headers, timeout=30) as api:
        for name, port, tier, heartbeat in rows:
            data = {"name": f"{team}-{name}", "team": team, "port": port, "tier": tier}
            data["last_heartbeat"] = heartbeat
            response = api.post(
                "/crud", json={"operation": "create", "entity_type": APPS, "data": data}
            )
            assert response.status_code == 201, response.text
    return team


def names(api: httpx.Client, team: str, *filters: dict, **extra) -> list[str]:
    body = {
        "operation": "list",
        "entity_type": APPS,
        "filters": [{"field": "team", "operator": "eq", "value": team}, *filters],
        "sort": [{"field": "name"}],
        **extra,
    }
    response = api.post("/crud", json=body)
    assert response.status_code == 200, response.text
    return [item["name"].removeprefix(f"{team}-") for item in response.json()["data"]]


@pytest.mark.parametrize(
    ("field", "operator", "value", "expected"),
    [
        ("port", "eq", 8080, ["beta-worker"]),
        ("port", "ne", 8080, ["alpha-api", "gamma-API"]),
        ("port", "gt", 8080, ["gamma-API"]),
        ("port", "gte", 8080, ["beta-worker", "gamma-API"]),
        ("port", "lt", 8080, ["alpha-api"]),
        ("port", "lte", 8080, ["alpha-api", "beta-worker"]),
        ("port", "in", [80, 9090], ["alpha-api", "gamma-API"]),
        ("port", "not_in", [80, 9090], ["beta-worker"]),
        ("name", "contains", "api", ["alpha-api", "gamma-API"]),
        ("name", "starts_with", "TEAM-", ["alpha-api", "beta-worker", "gamma-API"]),
        ("name", "ends_with", "worker", ["beta-worker"]),
        ("tier", "in", ["critical", "low"], ["alpha-api", "gamma-API"]),
        ("tier", "ne", "high", ["alpha-api", "gamma-API"]),
        ("last_heartbeat", "is_null", True, ["beta-worker"]),
        ("last_heartbeat", "is_null", False, ["alpha-api", "gamma-API"]),
        ("last_heartbeat", "gt", "2026-03-01T00:00:00Z", ["gamma-API"]),
        ("last_heartbeat", "lte", "2026-03-01T00:00:00Z", ["alpha-api"]),
        ("is_active", "eq", True, ["alpha-api", "beta-worker", "gamma-API"]),
    ],
)
def test_each_operator(api, team, field, operator, value, expected) -> None:
    found = names(api, team, {"field": field, "operator": operator, "value": value})
    assert found == expected


def test_descending_sort(api, team) -> None:
    found = names(api, team)
    body_sort = [{"field": "port", "order": "desc"}]
    response = api.post(
        "/crud",
        json={
            "operation": "list",
            "entity_type": APPS,
            "filters": [{"field": "team", "operator": "eq", "value": team}],
            "sort": body_sort,
        },
    )
    ports = [item["port"] for item in response.json()["data"]]
    assert (found, ports) == (["alpha-api", "beta-worker", "gamma-API"], [9090, 8080, 80])


@pytest.mark.parametrize(
    ("bad_filter", "message"),
    [
        ({"field": "colour", "operator": "eq", "value": "red"}, "Unknown field."),
        (
            {"field": "is_active", "operator": "gt", "value": True},
            "Operator gt does not fit a field of type boolean.",
        ),
        (
            {"field": "tier", "operator": "lt", "value": "low"},
            "Operator lt does not fit a field of type choice.",
        ),
    ],
)
def test_filters_that_do_not_fit_are_422(api, team, bad_filter, message) -> None:
    response = api.post(
        "/crud", json={"operation": "list", "entity_type": APPS, "filters": [bad_filter]}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": f"filters.0.{bad_filter['field']}", "message": message}
    ]


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"colour__gte": "3"}, [{"field": "colour__gte", "message": "Unknown field."}]),
        (
            {"tier": "low", "is_active__gt": "true"},
            [
                {
                    "field": "is_active__gt",
                    "message": "Operator gt does not fit a field of type boolean.",
                }
            ],
        ),
        ({"ordering": "-colour"}, [{"field": "ordering", "message": "Cannot sort by this field."}]),
    ],
)
def test_rest_query_errors_name_the_parameters_given(api, params, errors) -> None:
    response = api.get("/api/appmetrics/applications/", params=params)
    assert response.status_code == 422
    assert response.json()["errors"] == errors


@pytest.mark.parametrize(
    ("envelope", "error"),
    [
        (
            {"operation": "read"},
            {"field": "entity_id", "message": "entity_id is required for read"},
        ),
        (
            {"operation": "create", "entity_id": "x", "data": {"name": "x"}},
            {"field": "entity_id", "message": "entity_id must not be given for create"},
        ),
        ({"operation": "create"}, {"field": "data", "message": "data is required for create"}),
        (
            {"operation": "list", "hard": True},
            {"field": "hard", "message": "hard applies only to delete"},
        ),
    ],
)
def test_an_envelope_rule_names_its_field(api, envelope, error) -> None:
    response = api.post("/crud", json={"entity_type": APPS, **envelope})
    assert response.status_code == 422
    assert response.json()["errors"] == [error]


def test_a_lookup_filtered_twice_is_422_on_both_surfaces(api) -> None:
    twice = [
        {"field": "port", "operator": "gte", "value": 80},
        {"field": "port", "operator": "gte", "value": 8000},
    ]
    crud = api.post("/crud", json={"operation": "list", "entity_type": APPS, "filters": twice})
    # A query parameter given twice is refused for every route (tests/security).
    rest = api.get("/api/appmetrics/applications/?port__gte=80&port__gte=8000")

    assert (crud.status_code, crud.json()["errors"]) == (
        422,
        [
            {
                "field": "filters.1.port",
                "message": "Filtered twice with this operator; "
                "give several values with `in` or `not_in`.",
            }
        ],
    )
    assert (rest.status_code, rest.json()["errors"]) == (
        422,
        [{"field": "port__gte", "message": "Given more than once; each parameter is read once."}],
    )


def test_sort_on_unknown_field_is_422(api) -> None:
    response = api.post(
        "/crud",
        json={"operation": "list", "entity_type": APPS, "sort": [{"field": "colour"}]},
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "sort.0.colour", "message": "Cannot sort by this field."}
    ]


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        (
            {"name": "x", "colour": "red"},
            [
                {
                    "field": "colour",
                    "message": "Unknown field. Writable fields: app_version, environment, host, "
                    "is_active, last_heartbeat, name, port, team, tier.",
                }
            ],
        ),
        (
            {"name": "x", "version": 4},
            [{"field": "version", "message": "This field is read-only."}],
        ),
        ({"name": "x", "port": "80"}, [{"field": "port", "message": "Must be an integer."}]),
        ({"name": "x", "port": 0}, [{"field": "port", "message": "Must be at least 1."}]),
        ({"name": 5}, [{"field": "name", "message": "Must be a string."}]),
        (
            {"name": "x", "last_heartbeat": "noon"},
            [{"field": "last_heartbeat", "message": "Must be an ISO 8601 date-time."}],
        ),
        ({"team": "x"}, [{"field": "name", "message": "This field is required."}]),
    ],
)
def test_invalid_data_is_422_before_the_backend(api, data, errors) -> None:
    response = api.post("/crud", json={"operation": "create", "entity_type": APPS, "data": data})
    assert response.status_code == 422
    assert response.json()["errors"] == errors


def test_pagination_edges(api, team) -> None:
    def page(number: int, size: int) -> httpx.Response:
        return api.post(
            "/crud",
            json={
                "operation": "list",
                "entity_type": APPS,
                "filters": [{"field": "team", "operator": "eq", "value": team}],
                "page": number,
                "page_size": size,
            },
        )

    last = page(2, 2)
    assert last.status_code == 200
    assert len(last.json()["data"]) == 1
    assert last.json()["page_info"] == {
        "page": 2,
        "page_size": 2,
        "total_count": 3,
        "total_pages": 2,
        "has_next": False,
        "has_previous": True,
    }
    assert page(3, 2).status_code == 404
    assert page(1, 0).status_code == 422
    assert page(1, 1001).status_code == 422
    assert api.get("/api/appmetrics/applications/", params={"page_size": 1001}).status_code == 422


def test_rest_filter_with_unknown_lookup_is_422(api) -> None:
    response = api.get("/api/appmetrics/applications/", params={"port__near": "80"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "port__near", "message": "unknown lookup"}]


def deep(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels):
        value = {"a": value}
    return value


# Refused by the strict JSON reader (service/strict_json.py) before the entity type is looked up;
# tests/security/ covers each class at its edge.
@pytest.mark.parametrize(
    ("raw_value", "message"),
    [
        ("NaN", "NaN is not a number JSON allows; send a finite number."),
        ("1e400", "The number is too large for a 64-bit float."),
        ('"sur\\ud800"', "Holds a lone surrogate, which is not valid Unicode."),
        (str(2**70), "The number is outside the 64-bit integer range."),
    ],
)
def test_unsafe_json_values_are_422(api, raw_value, message) -> None:
    body = (
        '{"operation": "create", "entity_type": "core.configurations", '
        f'"data": {{"key": "unsafe", "value": {{"x": {raw_value}}}}}}}'
    )
    response = api.post("/crud", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "data.value.x", "message": message}]


def test_too_deep_data_is_422(api) -> None:
    data = {"key": "deep", "value": deep(40)}
    response = api.post(
        "/crud", json={"operation": "create", "entity_type": "core.configurations", "data": data}
    )
    assert response.status_code == 422
    # The body is level 1, data 2, value 3: the 33rd level is the 31st nested {"a": ...}.
    assert response.json()["errors"] == [
        {"field": "data.value." + ".".join(["a"] * 30), "message": "Nested deeper than 32 levels."}
    ]


@pytest.mark.parametrize(
    ("bad_filter", "field", "message"),
    [
        ({"field": "name", "operator": "in", "value": []}, "filters.0", "at least one value"),
        ({"field": "name", "operator": "eq", "value": None}, "filters.0", "use operator is_null"),
        ({"field": "page_size", "operator": "eq", "value": 5}, "filters.0.page_size", None),
        ({"field": "name__in", "operator": "eq", "value": "a"}, "filters.0.field", None),
        ({"field": "port", "operator": "eq", "value": 10.5}, "filters.0.port", None),
        ({"field": "port", "operator": "in", "value": [2**70]}, "filters.0.value.0", None),
        ({"field": "name", "operator": "in", "value": ["a,b"]}, "filters.0.name", None),
    ],
)
def test_filters_that_would_match_the_wrong_rows_are_422(api, bad_filter, field, message):
    response = api.post(
        "/crud", json={"operation": "list", "entity_type": APPS, "filters": [bad_filter]}
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [error["field"] for error in errors] == [field]
    if message:
        assert message in errors[0]["message"]


def test_entities_describe_fields_and_filters(api) -> None:
    entities = {item["entity_type"]: item for item in api.get("/crud/entities").json()["data"]}
    channels = entities["notification.channels"]
    assert channels["fields"]["channel_type"] == {
        "type": "choice",
        "required": True,
        "read_only": False,
        "choices": ["email", "slack", "webhook", "pagerduty"],
    }
    assert channels["fields"]["version"]["read_only"] is True
    assert "rate_limit_per_hour__gte" in channels["filters"]
    assert channels["conditional_writes"] is True
    assert len(entities) == 10
