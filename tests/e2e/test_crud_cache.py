"""Read caching: hit, miss, invalidation after every kind of write, stale when the backend fails."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid

import httpx
import pytest
import redis

from tests.backend_server import BackendServer
from tests.middleware_server import MiddlewareServer, free_port

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


class RedisRelay:
    """A TCP relay to Redis on loopback that the test cuts and restores: an outage for every
    instance behind it, and for none other.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.05)
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        # Shut down first: a listener only closed keeps completing handshakes while the
        # accepting thread still polls it, and those connections are then reset.
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        with self._lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # cut
            client.settimeout(None)
            upstream = socket.create_connection(("127.0.0.1", 6379))
            with self._lock:
                if self._listener is not listener:  # cut meanwhile: this one must not survive
                    client.close()
                    upstream.close()
                    return
                self._open.update((client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, target), daemon=True).start()


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65_536):
            target.sendall(chunk)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_RDWR)


def test_an_instance_that_read_during_a_redis_outage_never_goes_back_in_time(
    backend, tmp_path
) -> None:
    if not _redis_available():
        if os.environ.get("CI"):
            pytest.fail("Redis is not reachable on 127.0.0.1:6379 and CI is set")
        pytest.skip("Redis not reachable on 127.0.0.1:6379; start it to run this test")
    prefix = f"observer-test-{uuid.uuid4().hex[:8]}:"
    relay = RedisRelay()
    env = {
        **backend.env,
        "OBSERVER_REDIS_URL": f"redis://127.0.0.1:{relay.port}/0",
        "OBSERVER_CACHE_KEY_PREFIX": prefix,
        # Reads try Redis again at once after a failure, so each read below has one outcome.
        "OBSERVER_CACHE_REDIS_RETRY_SECONDS": "0",
    }
    relay.start()
    try:
        _cut_redis_between_two_instances(env, tmp_path, relay)
    finally:
        relay.cut()
        shared = redis.Redis(host="127.0.0.1", port=6379)
        for key in shared.scan_iter(match=f"{prefix}*"):
            shared.delete(key)
        shared.close()


def _cut_redis_between_two_instances(env: dict, tmp_path, relay: RedisRelay) -> None:
    with (
        MiddlewareServer(tmp_path / "a", env=env) as first,
        MiddlewareServer(tmp_path / "b", env=env) as second,
        httpx.Client(base_url=first.url, headers=first.headers, timeout=30) as api_a,
        httpx.Client(base_url=second.url, headers=second.headers, timeout=30) as api_b,
    ):
        created = api_a.post(CHANNELS, json={"name": unique("cut"), "channel_type": "email"})
        url = f"{CHANNELS}{created.json()['data']['id']}/"
        before = [_cache_and_version(api.get(url)) for api in (api_a, api_b)]

        relay.cut()
        patched = api_a.patch(url, json={"rate_limit_per_hour": 4})
        during = _cache_and_version(api_b.get(url))

        relay.start()
        back = _cache_and_version(api_b.get(url))
        # A sends its invalidation by itself: nothing is asked of A from here on.
        _wait_for_log(first, f"Redis cache at 127.0.0.1:{relay.port}/0 answers again.")
        settled = [_cache_and_version(api_b.get(url)) for _ in range(2)]

    assert before == [("miss", 1), ("hit", 1)]
    assert (patched.status_code, patched.json()["data"]["version"]) == (200, 2)
    assert during == ("miss", 2)
    assert back == ("miss", 2)
    # The first may be a miss or a hit, depending on whether A's invalidation landed before
    # or after B saved `back`; the version may not, and B has cached it by the second.
    assert [version for _, version in settled] == [2, 2]
    assert settled[-1] == ("hit", 2)


def _cache_and_version(answer: httpx.Response) -> tuple[str, int]:
    return answer.headers["X-Cache"], answer.json()["data"]["version"]


def _wait_for_log(server: MiddlewareServer, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log():
        assert time.monotonic() < deadline, f"not logged within {timeout} s: {text}"
        time.sleep(0.05)


def test_a_refused_write_leaves_the_cache_alone(api: httpx.Client) -> None:
    created = api.post(CHANNELS, json={"name": unique("keep"), "channel_type": "email"})
    url = f"{CHANNELS}{created.json()['data']['id']}/"
    api.get(url)
    assert api.get(url).headers["X-Cache"] == "hit"

    refused = api.patch(url, json={"channel_type": "fax"})
    assert refused.status_code == 422
    assert api.get(url).headers["X-Cache"] == "hit"


STALE_WARNING = '110 - "Response is stale"'
BREAKER_OPEN = "The backend's circuit breaker is open."


def test_a_write_that_never_left_keeps_the_stale_answers(tmp_path) -> None:
    with BackendServer() as backend:
        env = {
            **backend.env,
            "OBSERVER_CACHE_TTL_SECONDS": "0.2",
            "OBSERVER_BACKEND_RETRY_ATTEMPTS": "1",
            # Room for the refusals below before the breaker opens, which is then forced.
            "OBSERVER_BREAKER_WINDOW_SIZE": "10",
            "OBSERVER_BREAKER_MINIMUM_CALLS": "10",
            "OBSERVER_BREAKER_OPEN_SECONDS": "60",
            "OBSERVER_DISCOVERY_INTERVAL_SECONDS": "600",
        }
        with (
            MiddlewareServer(tmp_path, env=env) as server,
            httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as api,
        ):
            created = api.post(CHANNELS, json={"name": unique("nl"), "channel_type": "email"})
            url = f"{CHANNELS}{created.json()['data']['id']}/"
            one, page = api.get(url), api.get(CHANNELS, params={"ordering": "name"})
            assert (one.headers["X-Cache"], page.headers["X-Cache"]) == ("miss", "miss")
            stale = [
                (200, "stale", STALE_WARNING, one.json()),
                (200, "stale", STALE_WARNING, page.json()),
            ]

            backend.kill()
            time.sleep(0.3)  # past the 0.2 s TTL: only stale copies are left
            assert _read_both(api, url) == stale
            # Refused: the update at its read of the before-values, the create at the write.
            refused = [api.patch(url, json={"rate_limit_per_hour": 7}), _create(api)]
            assert [(r.status_code, r.json()["detail"]) for r in refused] == [
                (503, "The backend is unreachable (ConnectError)."),
            ] * 2
            assert _read_both(api, url) == stale

            _until_breaker_open(api)
            refused = [api.patch(url, json={"rate_limit_per_hour": 8}), _create(api)]
            assert [(r.status_code, r.json()["detail"]) for r in refused] == [
                (503, BREAKER_OPEN)
            ] * 2
            assert _read_both(api, url) == stale

            # The attempts are on the trail as before: refused with 503.
            history = api.get(f"/audit/notification/channels/{one.json()['data']['id']}")
            assert [(e["operation"], e["status_code"]) for e in history.json()["data"]] == [
                ("update", 503),
                ("update", 503),
                ("create", 201),
            ]


def test_a_write_that_may_have_landed_empties_the_cache(tmp_path) -> None:
    with BackendServer() as backend:
        env = {
            **backend.env,
            "OBSERVER_BACKEND_READ_TIMEOUT": "1",
            "OBSERVER_BACKEND_RETRY_ATTEMPTS": "1",
            "OBSERVER_DISCOVERY_INTERVAL_SECONDS": "600",
        }
        with (
            MiddlewareServer(tmp_path, env=env) as server,
            httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as api,
        ):
            name = unique("landed")
            api.get(CHANNELS, params={"name": name})
            assert api.get(CHANNELS, params={"name": name}).headers["X-Cache"] == "hit"

            backend.pause()  # the kernel takes the create's bytes; nobody answers them
            try:
                timed_out = api.post(CHANNELS, json={"name": name, "channel_type": "email"})
            finally:
                backend.resume()
            assert timed_out.status_code == 504

            # Whether the create landed, only the backend knows: the next list asks it.
            after = api.get(CHANNELS, params={"name": name})
            assert (after.status_code, after.headers["X-Cache"]) == (200, "miss")


def _create(api: httpx.Client) -> httpx.Response:
    return api.post(CHANNELS, json={"name": unique("w"), "channel_type": "email"})


def _read_both(api: httpx.Client, url: str) -> list[tuple[int, str, str | None, dict]]:
    """The entity and the list read before the backend went down, as answered now."""
    answers = [api.get(url), api.get(CHANNELS, params={"ordering": "name"})]
    return [
        (r.status_code, r.headers.get("X-Cache"), r.headers.get("Warning"), r.json())
        for r in answers
    ]


def _until_breaker_open(api: httpx.Client, timeout: float = 10) -> None:
    """Reads of ids never cached fail against the dead backend until its breaker opens."""
    deadline = time.monotonic() + timeout
    while api.get(f"{CHANNELS}{uuid.uuid4()}/").json()["detail"] != BREAKER_OPEN:
        assert time.monotonic() < deadline, "the breaker never opened"
