"""The backend and the database fail under a running middleware, with real processes.

The backend is the reference Django server (`python -m backend`), killed, paused with
SIGSTOP and started again on the same port. The middleware is `python main.py`. The
database's own faults are in test_database_faults.py.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from crud.registry import EXPECTED_APPS
from django_integration.api_client import BackendClient
from django_integration.exceptions import BackendNotReached, BackendUnavailable
from service.settings import Settings
from tests.backend_server import BackendServer
from tests.integration.scripted_backend import Answer, ScriptedBackend
from tests.middleware_server import MiddlewareServer, free_port

LIST_CHANNELS = {"operation": "list", "entity_type": "notification.channels"}
BREAKER_OPEN = "The backend's circuit breaker is open."
CALL_BUDGET = 4.0

# Caching off: every CRUD call below must reach the backend, or fail trying.
NO_CACHE = {"OBSERVER_CACHE_TTL_SECONDS": "0", "OBSERVER_CACHE_STALE_SECONDS": "0"}


def backend_env(backend: BackendServer, **extra: str) -> dict[str, str]:
    return {
        **backend.env,
        "OBSERVER_DISCOVERY_INTERVAL_SECONDS": "600",
        **NO_CACHE,
        **extra,
    }


def scrape(api: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of `/metrics`, keyed by name and sorted labels."""
    samples = {}
    for family in text_string_to_metric_families(api.get("/metrics").text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def crud_fast_bucket(samples) -> float:
    labels = (("le", "0.01"), ("method", "POST"), ("route", "/crud"))
    return samples.get(("observer_http_request_duration_seconds_bucket", labels), 0.0)


def backend_calls(samples, outcome: str) -> float:
    return samples.get(("observer_backend_calls_total", (("outcome", outcome),)), 0.0)


def test_unreachable_backend_is_503_then_breaker_opens(tmp_path) -> None:
    env = {
        "OBSERVER_BACKEND_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "OBSERVER_BACKEND_TOKEN": "unused",
        "OBSERVER_BACKEND_RETRY_ATTEMPTS": "1",
        "OBSERVER_BREAKER_WINDOW_SIZE": "4",
        "OBSERVER_BREAKER_MINIMUM_CALLS": "4",
        "OBSERVER_BREAKER_OPEN_SECONDS": "30",
        **NO_CACHE,
    }
    with (
        MiddlewareServer(tmp_path, env=env) as server,
        httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as api,
    ):
        assert api.get("/health/live").status_code == 200
        assert api.get("/health/ready").status_code == 200  # a dead backend is not our readiness

        refused = api.post("/crud", json=LIST_CHANNELS)
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"

        for _ in range(4):
            api.post("/crud", json=LIST_CHANNELS)
        health = api.get("/django/health")
        assert health.status_code == 503
        assert health.json()["breaker"]["state"] == "open"
        assert health.json()["discovery"]["ok"] is False

        fast = api.post("/crud", json=LIST_CHANNELS)
        assert fast.status_code == 503
        assert fast.json()["detail"] == BREAKER_OPEN
        assert 1 <= int(fast.headers["Retry-After"]) <= 30


def test_backend_down_at_start_up_is_registered_when_it_comes_back(tmp_path) -> None:
    backend = BackendServer(port=free_port())  # not started yet: its port refuses
    env = backend_env(
        backend,
        OBSERVER_DISCOVERY_INTERVAL_SECONDS="0.5",
        OBSERVER_BACKEND_RETRY_ATTEMPTS="1",
        OBSERVER_BREAKER_OPEN_SECONDS="0.5",
        OBSERVER_BREAKER_HALF_OPEN_CALLS="1",
    )
    try:
        with (
            MiddlewareServer(tmp_path, env=env) as server,
            httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as api,
        ):
            assert api.get("/health/live").status_code == 200
            down = api.get("/django/health")
            assert down.status_code == 503
            assert down.json()["missing_apps"] == list(EXPECTED_APPS)
            assert down.json()["discovery"]["ok"] is False

            backend.start()
            health = _until_discovered(api)
            assert health["missing_apps"] == []
            assert health["discovery"]["last_error"] is None
            assert "notification.channels" in health["entity_types"]
            # Discovery's own successes can fill the breaker's window while the refusals from
            # before the backend started are still in it, and open it for 0.5 s; a read must
            # work once the breaker has let its probe through.
            listed = _until_status(api, 200, timeout=10)
            assert listed.status_code == 200, listed.text
    finally:
        backend.close()


def test_backend_killed_under_load_then_breaker_recovers(tmp_path) -> None:
    with BackendServer() as backend:
        env = backend_env(
            backend,
            OBSERVER_BACKEND_RETRY_ATTEMPTS="2",
            OBSERVER_BACKEND_READ_TIMEOUT="2",
            OBSERVER_BACKEND_CALL_BUDGET=str(CALL_BUDGET),
            OBSERVER_BREAKER_WINDOW_SIZE="10",
            OBSERVER_BREAKER_MINIMUM_CALLS="5",
            OBSERVER_BREAKER_OPEN_SECONDS="4",
            OBSERVER_BREAKER_HALF_OPEN_CALLS="2",
        )
        with (
            MiddlewareServer(tmp_path, env=env) as server,
            httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as api,
        ):
            answers = _load_while_killing(server, backend)
            statuses = {status for status, _, _ in answers}
            assert statuses <= {200, 503, 504}, answers
            assert 200 in statuses and 503 in statuses
            # None hangs: every call ends within its budget, with slack for the machine.
            assert max(elapsed for _, elapsed, _ in answers) < CALL_BUDGET + 2.0
            assert api.get("/django/health").json()["breaker"]["state"] == "open"

            # The port is ours now: a connection attempt would show up in its backlog.
            with _listener_on(backend.port) as listener:
                before = scrape(api)
                fast = [api.post("/crud", json=LIST_CHANNELS) for _ in range(20)]
                after = scrape(api)
                with pytest.raises(BlockingIOError):
                    listener.accept()
            assert {(r.status_code, r.json()["detail"]) for r in fast} == {(503, BREAKER_OPEN)}
            assert crud_fast_bucket(after) - crud_fast_bucket(before) == 20  # each under 10 ms
            assert (
                backend_calls(after, "breaker_open") - backend_calls(before, "breaker_open") == 20
            )
            assert backend_calls(after, "connection_error") == backend_calls(
                before, "connection_error"
            )

            backend.start()  # same port, same data
            recovered = _until_status(api, 200, timeout=15)
            assert recovered.status_code == 200
            # The second of the two half-open calls; /django/health's probe is not one.
            assert api.post("/crud", json=LIST_CHANNELS).status_code == 200
            health = api.get("/django/health").json()
            assert health["breaker"]["state"] == "closed"
            transitions = scrape(api)
            for state in ("open", "half_open", "closed"):
                key = (
                    "observer_breaker_transitions_total",
                    (("breaker", "django"), ("to_state", state)),
                )
                assert transitions[key] == 1


def test_paused_backend_times_out_with_504(tmp_path) -> None:
    with BackendServer() as backend:
        env = backend_env(
            backend,
            OBSERVER_BACKEND_READ_TIMEOUT="1",
            OBSERVER_BACKEND_RETRY_ATTEMPTS="1",
            OBSERVER_BACKEND_HEALTH_BUDGET="0.5",
        )
        with (
            MiddlewareServer(tmp_path, env=env) as server,
            httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as api,
        ):
            assert api.post("/crud", json=LIST_CHANNELS).status_code == 200
            backend.pause()
            try:
                started = time.monotonic()
                response = api.post("/crud", json=LIST_CHANNELS)
                elapsed = time.monotonic() - started
                health = api.get("/django/health")
            finally:
                backend.resume()
            # The health probe has a budget of its own, shorter than a call's.
            assert (health.status_code, health.json()["detail"]) == (
                503,
                "The backend is not reachable: The backend did not answer within 0.5 s.",
            )
            assert response.status_code == 504
            assert response.headers["content-type"] == "application/problem+json"
            assert 1.0 <= elapsed < 3.0  # the 1 s read timeout, not the length of the pause
            assert api.post("/crud", json=LIST_CHANNELS).status_code == 200


async def test_keyed_post_retried_across_a_restart_creates_one_row() -> None:
    with BackendServer() as backend:
        client = BackendClient(_client_settings(), base_url=backend.url, token=backend.token)
        try:
            backend.kill()
            restart = threading.Timer(0.3, backend.start)
            restart.start()
            created = await client.request(
                "POST", "/api/notification/channels/",
                json={"name": "keyed", "channel_type": "email"},
                headers={"Idempotency-Key": "create-keyed-1"},
            )  # fmt: skip
            restart.join()
            assert created.status_code == 201
            assert client.retries >= 1
            assert await _channels_named(client, "keyed") == 1
        finally:
            await client.close()


async def test_post_without_key_is_never_retried() -> None:
    with BackendServer() as backend:
        client = BackendClient(_client_settings(), base_url=backend.url, token=backend.token)
        try:
            backend.kill()
            with pytest.raises(BackendUnavailable):
                await client.request(
                    "POST", "/api/notification/channels/",
                    json={"name": "unkeyed", "channel_type": "email"},
                )  # fmt: skip
            assert (client.retries, client.outcomes["connection_error"]) == (0, 1)
            backend.start()
            assert await _channels_named(client, "unkeyed") == 0
        finally:
            await client.close()


async def test_a_call_is_unsent_only_when_no_attempt_may_have_reached_the_backend() -> None:
    with BackendServer() as backend:
        settings = Settings(
            backend_retry_attempts=3,
            backend_retry_base_wait=0.05,
            backend_retry_max_wait=0.1,
            backend_read_timeout=5.0,
            breaker_minimum_calls=40,
            breaker_window_size=40,
        )
        client = BackendClient(settings, base_url=backend.url, token=backend.token)
        try:
            created = await client.request(
                "POST", "/api/notification/channels/",
                json={"name": "landing", "channel_type": "email"},
            )  # fmt: skip
            path = f"/api/notification/channels/{created.json()['id']}/"
            patch = {"json": {"rate_limit_per_hour": 5}, "headers": {"If-Match": '"1"'}}

            # The first attempt's bytes are in the paused backend's socket when it dies (a
            # reset); the two retries are refused. The write may have landed before the crash,
            # so the call as a whole is not one that never left.
            backend.pause()
            crash = threading.Timer(0.3, backend.kill)
            crash.start()
            with pytest.raises(BackendUnavailable) as one_may_have_landed:
                await client.request("PATCH", path, **patch)
            crash.join()
            with pytest.raises(BackendUnavailable) as all_refused:
                await client.request("PATCH", path, **patch)
        finally:
            await client.close()

    refused = (503, "The backend is unreachable (ConnectError).")
    assert type(one_may_have_landed.value) is BackendUnavailable
    assert (one_may_have_landed.value.status, one_may_have_landed.value.detail) == refused
    assert type(all_refused.value) is BackendNotReached
    assert (all_refused.value.status, all_refused.value.detail) == refused
    assert (client.retries, dict(client.outcomes)) == (4, {"success": 1, "connection_error": 6})


def test_health_probes_of_a_slow_backend_never_open_the_breaker(tmp_path) -> None:
    with ScriptedBackend() as backend:
        slow = [Answer(200, {"status": "ok"}, delay=1.0) for _ in range(6)]
        backend.script(*slow, path="/api/health/")
        env = {
            "OBSERVER_BACKEND_URL": backend.url,
            "OBSERVER_BACKEND_TOKEN": "unused",
            "OBSERVER_BACKEND_HEALTH_BUDGET": "0.2",
            "OBSERVER_BREAKER_WINDOW_SIZE": "4",
            "OBSERVER_BREAKER_MINIMUM_CALLS": "2",
        }
        with (
            MiddlewareServer(tmp_path, env=env) as server,
            httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as api,
        ):
            probes = [api.get("/django/health") for _ in range(6)]

    assert {(p.status_code, p.json()["detail"]) for p in probes} == {
        (503, "The backend is not reachable: The backend did not answer within 0.2 s."),
    }
    assert [p.json()["breaker"]["state"] for p in probes] == ["closed"] * 6


def test_shutdown_ends_retry_sleeps_of_calls_in_flight(tmp_path) -> None:
    with ScriptedBackend() as backend:
        # Start-up discovery finds an empty API root. A call naming a type it does not know
        # looks again, at most every 5 s (EntityRegistry), and meets a long Retry-After.
        backend.script(Answer(200, {}), Answer(503, headers={"Retry-After": "30"}), path="/api/")
        env = {
            "OBSERVER_BACKEND_URL": backend.url,
            "OBSERVER_BACKEND_TOKEN": "unused",
            "OBSERVER_BACKEND_CALL_BUDGET": "60",
            "OBSERVER_DISCOVERY_INTERVAL_SECONDS": "600",
        }
        server = MiddlewareServer(tmp_path, env=env).start()
        try:
            time.sleep(5.2)  # the registry's own pause between looks; not a setting
            with ThreadPoolExecutor(1) as pool:
                call = pool.submit(
                    httpx.post,
                    f"{server.url}/crud",
                    json=LIST_CHANNELS,
                    headers=server.headers,
                    timeout=60,
                )
                _until(lambda: sum(r.path == "/api/" for r in backend.received) == 2)
                started = time.monotonic()
                server.stop()  # SIGTERM; uvicorn lets the call in flight finish first
                answer = call.result()
        finally:
            server.stop()
    assert time.monotonic() - started < 10  # not the 30 s the backend asked for
    assert answer.status_code == 503, answer.text
    assert answer.json()["detail"] == "The middleware is shutting down."


# --- helpers -----------------------------------------------------------------------------


def _client_settings() -> Settings:
    return Settings(
        backend_retry_attempts=40,
        backend_retry_base_wait=0.2,
        backend_retry_max_wait=0.5,
        backend_call_budget=25.0,
        breaker_minimum_calls=40,
        breaker_window_size=40,
    )


async def _channels_named(client: BackendClient, name: str) -> int:
    body = (
        await client.request("GET", "/api/notification/channels/", params={"name": name})
    ).json()
    return int(body["count"])


def _load_while_killing(
    server: MiddlewareServer, backend: BackendServer
) -> list[tuple[int, float, str]]:
    """Eight callers in a loop; the backend dies under them; they stop once the breaker opens."""
    answers: list[tuple[int, float, str]] = []
    breaker_opened = threading.Event()
    deadline = time.monotonic() + 30

    def caller() -> None:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as api:
            while not breaker_opened.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                response = api.post("/crud", json=LIST_CHANNELS)
                detail = response.json().get("detail", "") if response.status_code != 200 else ""
                answers.append((response.status_code, time.monotonic() - started, detail))
                if detail == BREAKER_OPEN:
                    breaker_opened.set()

    with ThreadPoolExecutor(8) as pool:
        for _ in range(8):
            pool.submit(caller)
        # Kill it once traffic flows, however slow this machine is today.
        while sum(1 for status, _, _ in answers if status == 200) < 8:
            assert time.monotonic() < deadline, f"no traffic before the kill: {answers}"
            time.sleep(0.05)
        backend.kill()
    assert breaker_opened.is_set(), "the breaker never opened"
    return answers


class _listener_on:  # noqa: N801 - used as a context manager, reads like one
    def __init__(self, port: int) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self._socket.listen(16)
        self._socket.setblocking(False)

    def __enter__(self) -> socket.socket:
        return self._socket

    def __exit__(self, *exc: object) -> None:
        self._socket.close()


def _until_status(api: httpx.Client, status: int, timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = api.post("/crud", json=LIST_CHANNELS)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def _until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _until_discovered(api: httpx.Client, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        health = api.get("/django/health").json()
        if health["discovery"]["ok"] or time.monotonic() > deadline:
            return health
        time.sleep(0.2)
