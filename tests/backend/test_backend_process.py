"""`python -m backend` on its own, the BackendServer fault controls, and database URLs."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from backend.settings import database_settings
from tests.backend_server import REPO_ROOT, BackendServer, free_port


def test_generates_and_announces_a_token_when_none_is_given(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSERVER_BACKEND_")}
    database_url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    command = [sys.executable, "-m", "backend", "--port", str(port),
               "--database-url", database_url, "--log-level", "warning"]  # fmt: skip
    with subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stderr is not None
            announcement = "".join(process.stderr.readline() for _ in range(3))
            token = re.search(r"'Authorization: Token (\S+)'", announcement).group(1)
            wait_for_health(f"http://127.0.0.1:{port}")

            url = f"http://127.0.0.1:{port}/api/"
            authed = httpx.get(url, headers={"Authorization": f"Token {token}"}, trust_env=False)
            assert authed.status_code == 200
            assert announcement.startswith("No OBSERVER_BACKEND_TOKEN or --token given")
        finally:
            process.terminate()
            process.wait(10)


def wait_for_health(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/api/health/", trust_env=False).status_code == 200:
                return
        time.sleep(0.05)
    raise AssertionError(f"{url} never became healthy")


def test_kill_and_restart_keep_the_data() -> None:
    with BackendServer() as server:
        client = httpx.Client(base_url=server.url, headers=server.headers, trust_env=False)
        created = client.post("/api/core/configurations/", json={"key": "kept", "value": 1}).json()

        server.kill()
        with pytest.raises(httpx.ConnectError):
            client.get("/api/health/")

        server.start()
        assert client.get(f"/api/core/configurations/{created['id']}/").json() == created
        client.close()


def test_pause_leaves_requests_unanswered_until_resume() -> None:
    with BackendServer() as server:
        server.pause()
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{server.url}/api/health/", timeout=0.5, trust_env=False)

        server.resume()
        assert httpx.get(f"{server.url}/api/health/", trust_env=False).status_code == 200
        server.stop()
        server.stop()
        assert server.running is False


def test_postgresql_url() -> None:
    assert database_settings("postgresql://eye:s%40cret@db.local:5433/observer") == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "observer",
        "USER": "eye",
        "PASSWORD": "s@cret",
        "HOST": "db.local",
        "PORT": "5433",
    }


def test_sqlite_url_creates_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.sqlite3"

    entry = database_settings(f"sqlite:///{target}")

    assert entry["ENGINE"] == "django.db.backends.sqlite3"
    assert entry["NAME"] == str(target)
    assert target.parent.is_dir()


@pytest.mark.parametrize("url", ["redis://localhost/0", "postgresql://host:5432/", "backend.db"])
def test_unsupported_database_url(url: str) -> None:
    with pytest.raises(ValueError, match="Unsupported database URL"):
        database_settings(url)
