"""If-Match preconditions, the atomic version race, soft delete, restore and hard delete."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.backend_server import BackendServer

Unique = Callable[[str], str]

CHANNELS = "/api/notification/channels/"
RACE_ROUNDS = 8


def new_channel(client: httpx.Client, unique: Unique) -> tuple[str, dict[str, Any]]:
    response = client.post(CHANNELS, json={"name": unique("v"), "channel_type": "email"})
    assert response.status_code == 201
    return f"{CHANNELS}{response.json()['id']}/", response.json()


@pytest.mark.parametrize("if_match", ['"1"', "1", 'W/"1"', "*"])
def test_matching_if_match_writes(client: httpx.Client, unique: Unique, if_match: str) -> None:
    url, _ = new_channel(client, unique)

    response = client.patch(url, json={"is_enabled": False}, headers={"If-Match": if_match})

    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    assert response.json()["version"] == 2


def test_stale_if_match_is_412_with_current_version(client: httpx.Client, unique: Unique) -> None:
    url, _ = new_channel(client, unique)
    assert client.patch(url, json={"rate_limit_per_hour": 2}).status_code == 200

    stale = {"If-Match": '"1"'}
    for response in (
        client.patch(url, json={"rate_limit_per_hour": 3}, headers=stale),
        client.put(url, json={"name": unique("v"), "channel_type": "slack"}, headers=stale),
        client.delete(url, headers=stale),
        client.delete(url, params={"hard": "true"}, headers=stale),
        client.post(f"{url}restore/", headers=stale),
    ):
        assert response.status_code == 412
        assert response.json() == {
            "detail": "The object was changed by someone else: its version no longer matches.",
            "current_version": 2,
        }

    current = client.get(url).json()
    assert current["version"] == 2
    assert current["rate_limit_per_hour"] == 2


@pytest.mark.parametrize("if_match", ['"abc"', '"1", "2"', "-1", '""'])
def test_malformed_if_match_is_400(client: httpx.Client, unique: Unique, if_match: str) -> None:
    url, _ = new_channel(client, unique)

    response = client.patch(url, json={"is_enabled": False}, headers={"If-Match": if_match})

    assert response.status_code == 400
    assert response.json() == {"detail": 'If-Match must be one version, like "3".'}
    assert client.get(url).json()["version"] == 1


def test_concurrent_conditional_patches_one_wins(server: BackendServer, unique: Unique) -> None:
    """Both writers hold version n; the database lets exactly one of them through."""
    with httpx.Client(
        base_url=server.url, headers=server.headers, timeout=30.0, trust_env=False
    ) as setup:
        url, _ = new_channel(setup, unique)

    clients = [
        httpx.Client(base_url=server.url, headers=server.headers, timeout=30.0, trust_env=False)
        for _ in range(2)
    ]
    try:
        for version in range(1, RACE_ROUNDS + 1):
            barrier = threading.Barrier(2)

            def patch(index: int, version: int = version, barrier: threading.Barrier = barrier):
                barrier.wait()
                return clients[index].patch(
                    url,
                    json={"rate_limit_per_hour": 100 + index},
                    headers={"If-Match": f'"{version}"'},
                )

            with ThreadPoolExecutor(max_workers=2) as pool:
                responses = list(pool.map(patch, range(2)))

            statuses = sorted(response.status_code for response in responses)
            assert statuses == [200, 412]
            winner = next(response for response in responses if response.status_code == 200)
            loser = next(response for response in responses if response.status_code == 412)
            assert winner.json()["version"] == version + 1
            assert loser.json()["current_version"] == version + 1
    finally:
        for each in clients:
            each.close()

    with httpx.Client(
        base_url=server.url, headers=server.headers, timeout=30.0, trust_env=False
    ) as check:
        assert check.get(url).json()["version"] == RACE_ROUNDS + 1


def test_soft_delete_hides_and_restore_returns(client: httpx.Client, unique: Unique) -> None:
    url, created = new_channel(client, unique)
    name_filter = {"name": created["name"]}

    deleted = client.delete(url, headers={"If-Match": '"1"'})
    assert deleted.status_code == 204
    assert deleted.content == b""

    assert client.get(url).status_code == 404
    assert client.get(CHANNELS, params=name_filter).json()["count"] == 0
    assert client.delete(url).status_code == 404

    hidden = client.get(url, params={"include_inactive": "true"})
    assert hidden.status_code == 200
    assert hidden.json()["is_active"] is False
    assert hidden.json()["version"] == 2
    listed = client.get(CHANNELS, params={**name_filter, "include_inactive": "true"}).json()
    assert [row["id"] for row in listed["results"]] == [created["id"]]

    restored = client.post(f"{url}restore/", headers={"If-Match": "2"})
    assert restored.status_code == 200
    assert restored.headers["ETag"] == '"3"'
    assert restored.json() == {
        **hidden.json(),
        "is_active": True,
        "version": 3,
        "updated_at": restored.json()["updated_at"],
    }
    assert client.get(url).json()["is_active"] is True


def test_hard_delete_removes_the_row(client: httpx.Client, unique: Unique) -> None:
    url, _ = new_channel(client, unique)

    response = client.delete(url, params={"hard": "true"}, headers={"If-Match": '"1"'})

    assert response.status_code == 204
    assert client.get(url, params={"include_inactive": "true"}).status_code == 404
    assert client.post(f"{url}restore/").status_code == 404


def test_hard_delete_of_a_soft_deleted_row(client: httpx.Client, unique: Unique) -> None:
    url, _ = new_channel(client, unique)
    assert client.delete(url).status_code == 204

    response = client.delete(url, params={"hard": "true", "include_inactive": "true"})

    assert response.status_code == 204
    assert client.get(url, params={"include_inactive": "true"}).status_code == 404


def test_bad_switch_values_are_400(client: httpx.Client, unique: Unique) -> None:
    url, _ = new_channel(client, unique)

    assert client.delete(url, params={"hard": "yes"}).json() == {"hard": ["Must be true or false."]}
    response = client.get(url, params={"include_inactive": "maybe"})
    assert response.status_code == 400
    assert response.json() == {"include_inactive": ["Must be true or false."]}
    assert client.get(url).json()["version"] == 1
