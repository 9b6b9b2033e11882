"""The REST surface: DRF-shaped routes, ETag and If-Match, bulk, idempotency, restore."""

from __future__ import annotations

import asyncio
import uuid

import httpx

CHANNELS = "/api/notification/channels/"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_channel(api: httpx.Client, **fields) -> dict:
    body = {"name": unique("chan"), "channel_type": "email", **fields}
    response = api.post(CHANNELS, json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def test_rest_round_trip_with_etags(api: httpx.Client) -> None:
    channel = create_channel(api)
    url = f"{CHANNELS}{channel['id']}/"

    read = api.get(url)
    assert (read.status_code, read.headers["ETag"], read.json()["data"]) == (200, '"1"', channel)

    patched = api.patch(url, json={"rate_limit_per_hour": 5}, headers={"If-Match": '"1"'})
    assert (patched.status_code, patched.headers["ETag"]) == (200, '"2"')

    replaced = api.put(
        url,
        json={"name": channel["name"], "channel_type": "webhook"},
        headers={"If-Match": '"2"'},
    )
    assert replaced.status_code == 200
    assert (replaced.json()["data"]["channel_type"], replaced.json()["data"]["version"]) == (
        "webhook",
        3,
    )

    assert api.delete(url, headers={"If-Match": '"3"'}).status_code == 204
    assert api.get(url).status_code == 404
    restored = api.post(f"{url}restore/")
    assert (restored.status_code, restored.json()["data"]["is_active"]) == (200, True)
    assert restored.headers["ETag"] == '"5"'

    assert api.delete(url, params={"hard": "true"}).status_code == 204
    assert api.get(url, params={"include_inactive": "true"}).status_code == 404


def test_stale_if_match_is_412_with_current_version(api: httpx.Client) -> None:
    channel = create_channel(api)
    url = f"{CHANNELS}{channel['id']}/"
    api.patch(url, json={"rate_limit_per_hour": 7})

    stale = api.patch(url, json={"rate_limit_per_hour": 9}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert stale.json()["current_version"] == 2
    assert api.get(url).json()["data"]["rate_limit_per_hour"] == 7

    assert api.delete(url, headers={"If-Match": '"1"'}).status_code == 412
    assert api.patch(url, json={}, headers={"If-Match": "yesterday"}).status_code == 400


def test_lost_update_race_has_exactly_one_winner(middleware) -> None:
    async def race() -> list[int]:
        async with httpx.AsyncClient(
            base_url=middleware.url, headers=middleware.headers, timeout=30
        ) as client:
            created = await client.post(
                CHANNELS, json={"name": unique("race"), "channel_type": "slack"}
            )
            url = f"{CHANNELS}{created.json()['data']['id']}/"
            answers = await asyncio.gather(
                *(
                    client.patch(url, json={"rate_limit_per_hour": n}, headers={"If-Match": '"1"'})
                    for n in (11, 22)
                )
            )
            final = (await client.get(url)).json()["data"]
            assert final["version"] == 2
            return sorted(answer.status_code for answer in answers)

    for _ in range(3):
        assert asyncio.run(race()) == [200, 412]


def test_crud_version_race_has_exactly_one_winner(middleware) -> None:
    async def race() -> list[int]:
        async with httpx.AsyncClient(
            base_url=middleware.url, headers=middleware.headers, timeout=30
        ) as client:
            created = await client.post(
                CHANNELS, json={"name": unique("race"), "channel_type": "slack"}
            )
            entity_id = created.json()["data"]["id"]
            update = {
                "operation": "update",
                "entity_type": "notification.channels",
                "entity_id": entity_id,
                "version": 1,
            }
            answers = await asyncio.gather(
                *(
                    client.post("/crud", json=update | {"data": {"rate_limit_per_hour": n}})
                    for n in (11, 22)
                )
            )
            return sorted(answer.status_code for answer in answers)

    assert asyncio.run(race()) == [200, 409]


def test_idempotent_create_writes_once(api: httpx.Client) -> None:
    name = unique("idem")
    key = {"Idempotency-Key": f"key-{name}"}
    first = api.post(CHANNELS, json={"name": name, "channel_type": "email"}, headers=key)
    retry = api.post(CHANNELS, json={"name": name, "channel_type": "email"}, headers=key)

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    listed = api.get(CHANNELS, params={"name": name}).json()
    assert listed["page_info"]["total_count"] == 1

    other = api.post(CHANNELS, json={"name": name, "channel_type": "slack"}, headers=key)
    assert other.status_code == 422
    assert other.json()["detail"] == "This Idempotency-Key was used with a different request."
    assert other.json()["errors"] == [
        {"field": "Idempotency-Key", "message": "reused for another request or caller"}
    ]


def test_idempotent_crud_create_writes_once(api: httpx.Client) -> None:
    name = unique("idem")
    body = {
        "operation": "create",
        "entity_type": "notification.channels",
        "data": {"name": name, "channel_type": "email"},
    }
    key = {"Idempotency-Key": f"crud-{name}"}
    first = api.post("/crud", json=body, headers=key)
    retry = api.post("/crud", json=body, headers=key)
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json()["data"]["id"] == first.json()["data"]["id"]


def test_bulk_items_fail_alone(api: httpx.Client) -> None:
    existing = create_channel(api)
    name = unique("bulk")
    response = api.post(
        "/crud/bulk",
        json={
            "entity_type": "notification.channels",
            "items": [
                {"operation": "create", "data": {"name": name, "channel_type": "email"}},
                {"operation": "create", "data": {"name": unique("bulk"), "channel_type": "fax"}},
                {
                    "operation": "update",
                    "entity_id": existing["id"],
                    "version": 9,
                    "data": {"rate_limit_per_hour": 1},
                },
                {"operation": "delete", "entity_id": existing["id"]},
                {"operation": "read", "entity_id": existing["id"]},
            ],
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert [result["status"] for result in body["results"]] == [201, 422, 409, 204, 422]
    assert body["summary"] == {"total": 5, "succeeded": 2, "failed": 3}
    assert body["results"][0]["data"]["name"] == name
    assert body["results"][1]["error"]["errors"] == [
        {"field": "channel_type", "message": "Must be one of: email, slack, webhook, pagerduty."}
    ]
    assert body["results"][2]["error"]["current_version"] == 1


def test_rest_bulk_route_and_its_limit(api: httpx.Client) -> None:
    items = [
        {"operation": "create", "data": {"name": unique("rb"), "channel_type": "email"}}
        for _ in range(3)
    ]
    response = api.post(f"{CHANNELS}bulk/", json={"items": items})
    assert [result["status"] for result in response.json()["results"]] == [201, 201, 201]

    too_many = api.post(f"{CHANNELS}bulk/", json={"items": [{"operation": "delete"}] * 1001})
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "items"


def test_idempotent_retry_of_a_refused_create_replays_the_problem(api: httpx.Client) -> None:
    key = {"Idempotency-Key": f"refused-{uuid.uuid4().hex[:8]}"}
    body = {"name": unique("idem"), "channel_type": "fax"}
    first = api.post(CHANNELS, json=body, headers=key)
    retry = api.post(CHANNELS, json=body, headers=key)

    assert (first.status_code, retry.status_code) == (422, 422)
    assert retry.headers["content-type"] == "application/problem+json"
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert {k: v for k, v in retry.json().items() if k != "instance"} == {
        k: v for k, v in first.json().items() if k != "instance"
    }


def test_an_id_of_the_longest_length_is_read_and_one_longer_is_refused(
    api: httpx.Client,
) -> None:
    longest = api.get(f"{CHANNELS}{'a' * 100}/")
    too_long = api.get(f"{CHANNELS}{'a' * 101}/")

    assert (longest.status_code, longest.json()["title"]) == (404, "Not Found")
    assert too_long.status_code == 422
    assert too_long.json()["errors"] == [
        {"field": "path.entity_id", "message": "String should have at most 100 characters"}
    ]


def test_a_path_parameter_off_its_pattern_is_refused_by_name(api: httpx.Client) -> None:
    response = api.get(f"{CHANNELS}bad!id/")

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "path.entity_id", "message": "String should match pattern '^[A-Za-z0-9-]+$'"}
    ]
