"""CRUD through the middleware, a real server, to the reference backend, a real server."""

from __future__ import annotations

import uuid
from http import HTTPStatus

import httpx
import pytest

from tests.api_keys import bearer, create_key

PROBLEM = "application/problem+json"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def crud(api: httpx.Client, **body) -> httpx.Response:
    return api.post("/crud", json=body)


def new_channel(api: httpx.Client, prefix: str) -> dict:
    """A fresh email channel through /crud, at version 1."""
    return crud(
        api,
        operation="create",
        entity_type="notification.channels",
        data={"name": unique(prefix), "channel_type": "email"},
    ).json()["data"]


# entity type, data to create it, a field and value to update it with
ENTITIES = [
    ("notification.channels", {"channel_type": "slack"}, ("rate_limit_per_hour", 30)),
    ("analytics.data-sources", {"source_type": "prometheus"}, ("sync_frequency", 120)),
    (
        "appmetrics.applications",
        {"environment": "staging", "host": "10.0.0.5", "port": 8080, "team": "payments"},
        ("tier", "critical"),
    ),
    ("template_dashboards.templates", {"category": "ops"}, ("is_public", True)),
]


@pytest.mark.parametrize(("entity_type", "fields", "update"), ENTITIES)
def test_round_trip(api: httpx.Client, entity_type: str, fields: dict, update: tuple) -> None:
    name = unique("rt")
    created = crud(api, operation="create", entity_type=entity_type, data={"name": name, **fields})
    assert created.status_code == 201, created.text
    entity = created.json()["data"]
    assert (entity["name"], entity["version"], entity["is_active"]) == (name, 1, True)
    assert created.headers["ETag"] == '"1"'
    entity_id = entity["id"]

    read = crud(api, operation="read", entity_type=entity_type, entity_id=entity_id)
    assert read.status_code == 200
    assert read.json()["data"] == entity

    field, value = update
    updated = crud(
        api,
        operation="update",
        entity_type=entity_type,
        entity_id=entity_id,
        data={field: value},
        version=1,
    )
    assert updated.status_code == 200, updated.text
    assert (updated.json()["data"][field], updated.json()["data"]["version"]) == (value, 2)
    assert updated.headers["ETag"] == '"2"'

    listed = crud(
        api,
        operation="list",
        entity_type=entity_type,
        filters=[{"field": "name", "operator": "eq", "value": name}],
    )
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["data"]] == [entity_id]
    assert listed.json()["page_info"] == {
        "page": 1,
        "page_size": 50,
        "total_count": 1,
        "total_pages": 1,
        "has_next": False,
        "has_previous": False,
    }

    deleted = crud(api, operation="delete", entity_type=entity_type, entity_id=entity_id)
    assert (deleted.status_code, deleted.content) == (204, b"")

    gone = crud(api, operation="read", entity_type=entity_type, entity_id=entity_id)
    assert gone.status_code == 404
    assert gone.headers["content-type"] == PROBLEM

    kept = crud(
        api, operation="read", entity_type=entity_type, entity_id=entity_id, include_inactive=True
    )
    assert (kept.status_code, kept.json()["data"]["is_active"], kept.json()["data"]["version"]) == (
        200,
        False,
        3,
    )


def test_stale_version_is_409_with_current_version(api: httpx.Client) -> None:
    created = crud(
        api,
        operation="create",
        entity_type="core.configurations",
        data={"key": unique("cfg"), "value": {"retention_days": 7}},
    )
    entity_id = created.json()["data"]["id"]
    first = crud(
        api,
        operation="update",
        entity_type="core.configurations",
        entity_id=entity_id,
        data={"value": {"retention_days": 14}},
        version=1,
    )
    assert first.status_code == 200

    stale = crud(
        api,
        operation="update",
        entity_type="core.configurations",
        entity_id=entity_id,
        data={"value": {"retention_days": 30}},
        version=1,
    )
    assert stale.status_code == 409
    assert stale.headers["content-type"] == PROBLEM
    problem = stale.json()
    assert (problem["status"], problem["current_version"]) == (409, 2)
    assert problem["detail"] == "Version 1 is not current; the entity is at version 2."

    unchanged = crud(api, operation="read", entity_type="core.configurations", entity_id=entity_id)
    assert unchanged.json()["data"]["value"] == {"retention_days": 14}


def test_unknown_entity_type_is_404_naming_the_known_ones(api: httpx.Client) -> None:
    response = crud(api, operation="list", entity_type="billing.invoices")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["detail"] == "Unknown entity type 'billing.invoices'."
    assert problem["known_entity_types"] == [
        "analytics.data-sources",
        "analytics.reports",
        "appmetrics.applications",
        "appmetrics.metrics",
        "core.configurations",
        "notification.alert-rules",
        "notification.alerts",
        "notification.channels",
        "template_dashboards.dashboards",
        "template_dashboards.templates",
    ]


def test_invalid_data_is_422_with_each_field(api: httpx.Client) -> None:
    response = crud(
        api,
        operation="create",
        entity_type="appmetrics.applications",
        data={"name": unique("app"), "environment": "moon", "port": 70000},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    fields = sorted(error["field"] for error in response.json()["errors"])
    assert fields == ["environment", "port"]


def test_missing_entity_is_404(api: httpx.Client) -> None:
    response = crud(
        api, operation="read", entity_type="notification.channels", entity_id=str(uuid.uuid4())
    )
    assert response.status_code == 404
    assert response.json()["status"] == 404


def test_malformed_json_is_400_problem(api: httpx.Client) -> None:
    response = api.post(
        "/crud", content=b'{"operation": "list", ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["title"] == "Malformed JSON"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"operation": "explode", "entity_type": "core.configurations"}, "operation"),
        ({"operation": "read", "entity_type": "core.configurations"}, "entity_id"),
        (
            {"operation": "list", "entity_type": "core.configurations", "page_size": 1001},
            "page_size",
        ),
        ({"operation": "list", "entity_type": "../etc"}, "entity_type"),
    ],
)
def test_bad_envelope_is_422_naming_the_field(api: httpx.Client, body: dict, field: str) -> None:
    response = api.post("/crud", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


def test_writes_are_audited_newest_first(api: httpx.Client) -> None:
    name = unique("audited")
    alice = unique("alice")
    headers = {"X-Request-ID": f"req-{name}", **bearer(create_key(api, alice, "crud:write"))}
    created = api.post(
        "/crud",
        json={
            "operation": "create",
            "entity_type": "notification.channels",
            "data": {"name": name, "channel_type": "email"},
        },
        headers=headers,
    )
    entity_id = created.json()["data"]["id"]
    api.post(
        "/crud",
        json={
            "operation": "update",
            "entity_type": "notification.channels",
            "entity_id": entity_id,
            "data": {"channel_type": "webhook"},
        },
        headers=headers,
    )

    newest = api.get("/audit", params={"page_size": 2}).json()["data"]
    update_entry, create_entry = newest
    assert (update_entry["operation"], update_entry["entity_id"]) == ("update", entity_id)
    assert update_entry["changes"]["channel_type"] == {"old": "email", "new": "webhook"}
    assert update_entry["changes"]["version"] == {"old": 1, "new": 2}
    assert (update_entry["actor"], update_entry["request_id"]) == (alice, f"req-{name}")
    assert (update_entry["outcome"], update_entry["status_code"]) == ("success", 200)
    assert (create_entry["operation"], create_entry["status_code"]) == ("create", 201)
    assert create_entry["changes"]["name"] == {"old": None, "new": name}


def test_refused_write_is_audited_as_failure(api: httpx.Client) -> None:
    response = crud(
        api,
        operation="create",
        entity_type="notification.channels",
        data={"name": unique("bad"), "channel_type": "fax"},
    )
    assert response.status_code == 422
    entry = api.get("/audit", params={"page_size": 1}).json()["data"][0]
    assert (entry["operation"], entry["outcome"], entry["status_code"]) == (
        "create",
        "failure",
        422,
    )


def test_request_id_is_echoed(api: httpx.Client) -> None:
    response = api.get("/health/live", headers={"X-Request-ID": "probe-42"})
    assert response.headers["X-Request-ID"] == "probe-42"
    generated = api.get("/health/live").headers["X-Request-ID"]
    assert len(generated) == 32


# --- bulk items that are not objects ----------------------------------------------------------

BULK_PATHS = ["/crud/bulk", "/api/notification/channels/bulk/"]


def not_an_object(index: int) -> dict:
    return {
        "type": "about:blank",
        "title": HTTPStatus(422).phrase,
        "status": 422,
        "detail": f"Item {index} is not a JSON object.",
        "errors": [{"field": f"items.{index}", "message": "Must be a JSON object."}],
    }


def bulk_body(path: str, items: object) -> dict:
    default_type = {"entity_type": "notification.channels"} if path == "/crud/bulk" else {}
    return {**default_type, "items": items}


@pytest.mark.parametrize("path", BULK_PATHS)
def test_a_bulk_item_that_is_not_an_object_fails_alone(api: httpx.Client, path: str) -> None:
    actor = unique("bulk-junk")
    writer = bearer(create_key(api, actor, "crud:write"))
    first, last = unique("bj"), unique("bj")
    items = [
        {"operation": "create", "data": {"name": first, "channel_type": "email"}},
        "junk",
        None,
        [],
        5,
        {"operation": "create", "data": {"name": unique("bj"), "channel_type": "fax"}},
        {"operation": "create", "data": {"name": last, "channel_type": "slack"}},
    ]

    response = api.post(path, json=bulk_body(path, items), headers=writer)

    assert response.status_code == 200, response.text
    body = response.json()
    statuses = [(result["index"], result["status"]) for result in body["results"]]
    assert statuses == [(0, 201), (1, 422), (2, 422), (3, 422), (4, 422), (5, 422), (6, 201)]
    assert [body["results"][index]["error"] for index in (1, 2, 3, 4)] == [
        not_an_object(index) for index in (1, 2, 3, 4)
    ]
    assert [body["results"][index]["data"]["name"] for index in (0, 6)] == [first, last]
    assert body["summary"] == {"total": 7, "succeeded": 2, "failed": 5}

    # The trail holds what it holds for any bulk: the writes and the data refused by the
    # entity's rules. An item that is not an object names no operation, like an item whose
    # envelope fails validation, and is not on it.
    trail = api.get("/audit", params={"actor": actor}).json()["data"]
    assert [(entry["operation"], entry["status_code"]) for entry in trail] == [
        ("create", 201),
        ("create", 422),
        ("create", 201),
    ]


@pytest.mark.parametrize("path", BULK_PATHS)
@pytest.mark.parametrize(
    ("items", "message"),
    [
        ("junk", "Input should be a valid list"),
        ({"operation": "create"}, "Input should be a valid list"),
        ([], "List should have at least 1 item after validation, not 0"),
        ([5] * 1001, "More than 1000 items."),  # the JSON reader's own list limit
    ],
)
def test_bulk_items_must_be_a_list_of_1_to_1000(
    api: httpx.Client, path: str, items: object, message: str
) -> None:
    response = api.post(path, json=bulk_body(path, items))

    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "items", "message": message}]


# --- switches and version are strict ----------------------------------------------------------


@pytest.mark.parametrize(
    ("switch", "value"),
    [("hard", "yes"), ("hard", 1), ("include_inactive", "true"), ("replace", "1")],
)
def test_switches_must_be_json_booleans(api: httpx.Client, switch: str, value: object) -> None:
    created = new_channel(api, "switch")
    operation = {"hard": "delete", "include_inactive": "read", "replace": "update"}[switch]
    body = {
        "operation": operation,
        "entity_type": "notification.channels",
        "entity_id": created["id"],
        switch: value,
    }
    if operation == "update":
        body["data"] = {"name": unique("switch"), "channel_type": "email"}

    refused = api.post("/crud", json=body)
    still_there = crud(
        api, operation="read", entity_type="notification.channels", entity_id=created["id"]
    )

    assert (refused.status_code, refused.json()["errors"]) == (
        422,
        [{"field": switch, "message": "Input should be a valid boolean"}],
    )
    assert (still_there.status_code, still_there.json()["data"]["version"]) == (200, 1)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (True, "Input should be a valid integer"),
        (False, "Input should be a valid integer"),
        ("1", "Input should be a valid integer"),
        (1.0, "Input should be a valid integer"),
        (0, "Input should be greater than or equal to 1"),
    ],
)
def test_version_must_be_an_integer_from_1(
    api: httpx.Client, version: object, message: str
) -> None:
    created = new_channel(api, "ver")
    update = {
        "operation": "update",
        "entity_type": "notification.channels",
        "entity_id": created["id"],
        "data": {"rate_limit_per_hour": 5},
        "version": version,
    }

    refused = api.post("/crud", json=update)
    in_bulk = api.post("/crud/bulk", json={"items": [update]})

    assert (refused.status_code, refused.json()["errors"]) == (
        422,
        [{"field": "version", "message": message}],
    )
    assert in_bulk.json()["results"] == [
        {
            "index": 0,
            "status": 422,
            "error": {
                "type": "about:blank",
                "title": HTTPStatus(422).phrase,
                "status": 422,
                "detail": "The item failed validation.",
                "errors": [{"field": "version", "message": message}],
            },
        }
    ]
    unchanged = crud(
        api, operation="read", entity_type="notification.channels", entity_id=created["id"]
    )
    assert unchanged.json()["data"] == created


def test_if_match_still_reaches_the_version_as_an_integer(api: httpx.Client) -> None:
    created = new_channel(api, "ifm")
    url = f"/api/notification/channels/{created['id']}/"

    updated = api.patch(url, json={"rate_limit_per_hour": 5}, headers={"If-Match": '"1"'})
    stale = api.patch(url, json={"rate_limit_per_hour": 6}, headers={"If-Match": '"1"'})

    assert (updated.status_code, updated.json()["data"]["version"]) == (200, 2)
    assert (stale.status_code, stale.json()["current_version"]) == (412, 2)
