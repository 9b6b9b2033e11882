"""Runs the middleware as users do, `python main.py`, on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.loopback import free_port  # noqa: F401 - tests import it from here too

REPO_ROOT = Path(__file__).resolve().parent.parent
# The admin key every test server starts with, unless a test passes its own environment.
ADMIN_API_KEY = "test-admin-key-0123456789abcdefghijklmnopqrstuv"


class MiddlewareServer:
    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, *, separate_stdout: bool = False
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "middleware.log"  # stderr: the JSON log
        # What the service prints for a person (the first admin key); by default in the log file.
        self.stdout_path = data_dir / "middleware.stdout" if separate_stdout else self.log_path
        self._extra_env = {
            "OBSERVER_ADMIN_API_KEY": ADMIN_API_KEY,
            # Tests refuse many requests on purpose, all from 127.0.0.1; the security tests
            # that check this limit set their own.
            "OBSERVER_AUTH_FAILURE_RATE_LIMIT": "100000/minute",
            **(env or {}),
        }
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> MiddlewareServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "OBSERVER_HOST": "127.0.0.1",
            "OBSERVER_PORT": str(self.port),
            "OBSERVER_DATA_DIR": str(self.data_dir),
            **self._extra_env,
        }
        # The child keeps its own handles.
        with self.log_path.open("ab") as log, self.stdout_path.open("ab") as out:
            self._process = subprocess.Popen(
                [sys.executable, "main.py"], cwd=REPO_ROOT, env=env, stdout=out, stderr=log
            )
        self._wait_until_ready(timeout)
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    @property
    def pid(self) -> int:
        assert self._process is not None, "the server is not running"
        return self._process.pid

    @property
    def headers(self) -> dict[str, str]:
        """What a client sends to be admitted: the server's admin key, if it has one."""
        key = self._extra_env["OBSERVER_ADMIN_API_KEY"]
        return {"Authorization": f"Bearer {key}"} if key else {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def __enter__(self) -> MiddlewareServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"middleware exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"middleware not ready within {timeout} s:\n{self.log()}")
