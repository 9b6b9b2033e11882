"""Read caching: hit, miss, invalidation after every kind of write, stale when the backend fails."""

from __future__ import annotations

import os
import socket
import time
import uuid

import httpx
import pytest
import redis

from tests.backend_server import BackendServer
from tests.middleware_server import MiddlewareServer

CHANNELS = "/api/notification/channels/"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_read_is_cached_until_a_write(api: httpx.Client) -> None:
    created = api.post(CHANNELS, json={"name": unique("c"), "channel_type": "email"})
    url = f"{CHANNELS}{created.json()['data']['id']}/"

    assert api.get(url).headers["X-Cache"] == "miss"
    hit = api.get(url)
    assert (hit.headers["X-Cache"], hit.headers["ETag"]) == ("hit", '"1"')

    api.patch(url, json={"rate_limit_per_hour": 3})
    after = api.get(url)
    assert (after.headers["X-Cache"], after.json()["data"]["rate_limit_per_hour"]) == ("miss", 3)


def test_a_hit_is_the_first_answer_byte_for_byte(api: httpx.Client) -> None:
    name = unique("bytes-é")  # a non-ASCII name: written as UTF-8, as the first answer was
    created = api.post(CHANNELS, json={"name": name, "channel_type": "email"}).json()["data"]
    url = f"{CHANNELS}{created['id']}/"

    miss, hit = api.get(url), api.get(url)

    assert (miss.headers["X-Cache"], hit.headers["X-Cache"]) == ("miss", "hit")
    assert hit.content == miss.content
    assert miss.json() == {"data": created}
    assert f'"name":"{name}"'.encode() in hit.content
    assert [miss.headers["Content-Type"], hit.headers["Content-Length"]] == [
        "application/json",
        str(len(miss.content)),
    ]


WRITES = {
    "create": lambda api, url: api.post(
        CHANNELS, json={"name": unique("w"), "channel_type": "email"}
    ),
    "update": lambda api, url: api.patch(url, json={"rate_limit_per_hour": 2}),
    "replace": lambda api, url: api.put(url, json={"name": unique("w"), "channel_type": "slack"}),
    "delete": lambda api, url: api.delete(url),
    "restore": lambda api, url: api.post(f"{url}restore/"),
    "bulk": lambda api, url: api.post(
        f"{CHANNELS}bulk/",
        json={
            "items": [
                {"operation": "create", "data": {"name": unique("w"), "channel_type": "email"}}
            ]
        },
    ),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_every_kind_of_write_invalidates_lists(api: httpx.Client, write: str) -> None:
    created = api.post(CHANNELS, json={"name": unique("inv"), "channel_type": "email"})
    url = f"{CHANNELS}{created.json()['data']['id']}/"
    if write == "restore":
        api.delete(url)
    params = {"ordering": "-created_at", "page_size": 5, "include_inactive": "true"}
    api.get(CHANNELS, params=params)
    assert api.get(CHANNELS, params=params).headers["X-Cache"] == "hit"

    assert WRITES[write](api, url).status_code < 300
    assert api.get(CHANNELS, params=params).headers["X-Cache"] == "miss"


def test_stale_read_when_the_backend_is_down(tmp_path) -> None:
    with BackendServer() as backend:
        env = {
            **backend.env,
            "OBSERVER_CACHE_TTL_SECONDS": "0.2",
            "OBSERVER_BACKEND_RETRY_ATTEMPTS": "1",
        }
        with (
            MiddlewareServer(tmp_path, env=env) as server,
            httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as api,
        ):
            created = api.post(CHANNELS, json={"name": unique("s"), "channel_type": "email"})
            url = f"{CHANNELS}{created.json()['data']['id']}/"
            assert api.get(url).headers["X-Cache"] == "miss"

            backend.kill()
            time.sleep(0.3)  # past the 0.2 s TTL: only a stale copy is left
            stale = api.get(url)
            assert stale.status_code == 200
            assert (stale.headers["X-Cache"], stale.headers["Warning"]) == (
                "stale",
                '110 - "Response is stale"',
            )
            assert stale.json() == created.json()

            never_read = api.get(f"{CHANNELS}{uuid.uuid4()}/")
            assert never_read.status_code == 503


def _redis_available() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


def test_instances_sharing_redis_see_each_others_invalidations(backend, tmp_path) -> None:
    if not _redis_available():
        if os.environ.get("CI"):
            pytest.fail("Redis is not reachable on 127.0.0.1:6379 and CI is set")
        pytest.skip("Redis not reachable on 127.0.0.1:6379; start it to run this test")
    prefix = f"observer-test-{uuid.uuid4().hex[:8]}:"
    env = {
        **backend.env,
        "OBSERVER_REDIS_URL": "redis://127.0.0.1:6379/0",
        "OBSERVER_CACHE_KEY_PREFIX": prefix,
    }
    try:
        _share_one_redis(env, tmp_path)
    finally:
        shared = redis.Redis(host="127.0.0.1", port=6379)
        for key in shared.scan_iter(match=f"{prefix}*"):
            shared.delete(key)
        shared.close()


def _share_one_redis(env: dict, tmp_path) -> None:
    with (
        MiddlewareServer(tmp_path / "a", env=env) as first,
        MiddlewareServer(tmp_path / "b", env=env) as second,
        httpx.Client(base_url=first.url, headers=first.headers, timeout=30) as api_a,
        httpx.Client(base_url=second.url, headers=second.headers, timeout=30) as api_b,
    ):
        created = api_a.post(CHANNELS, json={"name": unique("r"), "channel_type": "email"})
        url = f"{CHANNELS}{created.json()['data']['id']}/"
        assert api_a.get(url).headers["X-Cache"] == "miss"
        assert api_b.get(url).headers["X-Cache"] == "hit"  # filled by the other instance

        api_a.patch(url, json={"rate_limit_per_hour": 4})
        after = api_b.get(url)
        assert (after.headers["X-Cache"], after.json()["data"]["version"]) == ("miss", 2)


def test_a_refused_write_leaves_the_cache_alone(api: httpx.Client) -> None:
    created = api.post(CHANNELS, json={"name": unique("keep"), "channel_type": "email"})
    url = f"{CHANNELS}{created.json()['data']['id']}/"
    api.get(url)
    assert api.get(url).headers["X-Cache"] == "hit"

    refused = api.patch(url, json={"channel_type": "fax"})
    assert refused.status_code == 422
    assert api.get(url).headers["X-Cache"] == "hit"
