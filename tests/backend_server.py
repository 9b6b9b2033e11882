"""The reference backend as a real server process on loopback, for tests.

    with BackendServer() as server:
        httpx.get(f"{server.url}/api/health/")

`kill()`, `pause()` and `resume()` let fault tests crash or freeze it; `start()` after `stop()`
or `kill()` brings it back on the same port with the same data.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from tests.loopback import free_port  # noqa: F401 - tests import it from here too

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
POLL_INTERVAL_SECONDS = 0.05


class BackendStartError(RuntimeError):
    """The backend process exited or never became healthy."""


class BackendServer:
    """`python -m backend` in a subprocess with a temporary SQLite file and a known token."""

    def __init__(self, token: str | None = None, port: int | None = None) -> None:
        self.token = token or secrets.token_urlsafe(24)
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self._workdir = tempfile.TemporaryDirectory(prefix="observer-backend-")
        self.database_path = Path(self._workdir.name) / "backend.sqlite3"
        self.log_path = Path(self._workdir.name) / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    @property
    def env(self) -> dict[str, str]:
        """The middleware's settings for calling this backend."""
        return {"OBSERVER_BACKEND_URL": self.url, "OBSERVER_BACKEND_TOKEN": self.token}

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> BackendServer:
        """Start the process and wait until `/api/health/` answers; no-op when running."""
        if self.running:
            return self

        command = [
            sys.executable, "-m", "backend",
            "--host", HOST,
            "--port", str(self.port),
            "--database-url", f"sqlite:///{self.database_path}",
            f"--token={self.token}",  # a token may begin with "-", which argparse would misread
            "--log-level", "warning",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()
            )
        self._wait_until_healthy()
        return self

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), killing it if it does not exit in time; idempotent."""
        process = self._process
        if process is None:
            return
        self._process = None
        if process.poll() is not None:
            return

        process.send_signal(signal.SIGCONT)  # a paused process cannot handle SIGTERM
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Crash it (SIGKILL), as a fault; `start()` brings it back with the same data."""
        process = self._process
        if process is None:
            return
        self._process = None
        process.kill()
        process.wait()

    def pause(self) -> None:
        """Freeze it (SIGSTOP): connections are accepted by the kernel but never answered."""
        self._require_process().send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._require_process().send_signal(signal.SIGCONT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        """Stop and delete the temporary database."""
        self.stop()
        self._workdir.cleanup()

    def __enter__(self) -> BackendServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("The backend is not running.")
        return self._process

    def _wait_until_healthy(self) -> None:
        process = self._require_process()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._process = None
                raise BackendStartError(f"Backend exited with {process.returncode}:\n{self.log()}")
            if self._healthy():
                return
            time.sleep(POLL_INTERVAL_SECONDS)

        self.stop()
        raise BackendStartError(f"Backend not healthy in {START_TIMEOUT_SECONDS}s:\n{self.log()}")

    def _healthy(self) -> bool:
        try:
            response = httpx.get(f"{self.url}/api/health/", timeout=1.0, trust_env=False)
        except httpx.TransportError:
            return False
        return response.status_code == 200
