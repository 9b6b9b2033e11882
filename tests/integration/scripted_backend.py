"""A stand-in backend on a real loopback socket whose answers a test scripts in advance.

    with ScriptedBackend() as backend:
        backend.script(Answer(503, headers={"Retry-After": "1"}), Answer(200, {"ok": True}))
        backend.script(Answer(503), path="/api/health/")  # only for calls to that path
        ...
        backend.received  # every request that arrived, in order

It runs uvicorn in its own thread and event loop, so the client under test talks to it
over TCP exactly as it talks to Django. A path's own script is used before the general
one; when both run out, it answers 200 `{}`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send

from tests.middleware_server import free_port


@dataclass
class Answer:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering, to play a slow backend


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedBackend:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.received: list[Received] = []
        self._answers: dict[str | None, deque[Answer]] = {}
        self._lock = threading.Lock()
        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            interface="asgi3",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def script(self, *answers: Answer, path: str | None = None) -> None:
        with self._lock:
            self._answers.setdefault(path, deque()).extend(answers)

    def __enter__(self) -> ScriptedBackend:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the scripted backend did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def _next_answer(self, path: str) -> Answer:
        for queue in (self._answers.get(path), self._answers.get(None)):
            if queue:
                return queue.popleft()
        return Answer()

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {name.decode(): value.decode() for name, value in scope["headers"]}
        with self._lock:
            self.received.append(Received(scope["method"], scope["path"], headers, body))
            answer = self._next_answer(scope["path"])

        if answer.delay:
            await asyncio.sleep(answer.delay)
        payload = json.dumps(answer.body).encode()
        response_headers = [(b"content-type", b"application/json")]
        response_headers += [(k.lower().encode(), v.encode()) for k, v in answer.headers.items()]
        start = {"type": "http.response.start", "status": answer.status}
        await send({**start, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})
