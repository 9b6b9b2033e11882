"""Reading request bodies: a client that leaves mid-body is its own error, not the server's."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from service.problems import Problem
from service.request_body import read_body


async def test_a_client_that_leaves_mid_body_is_a_400_not_a_server_error():
    # The disconnect is fed to the ASGI receive channel directly: over a real socket the
    # server's answer to it cannot be observed, as the client is gone.
    messages = iter(
        [
            {"type": "http.request", "body": b'[{"name": "cpu"', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict:
        return next(messages)

    scope = {"type": "http", "method": "POST", "path": "/telemetry/batch", "headers": []}

    with pytest.raises(Problem) as refused:
        await read_body(Request(scope, receive), 1_000, limit="telemetry_max_body_bytes")

    assert (refused.value.status, refused.value.detail) == (
        400,
        "The client closed the connection after 15 bytes of its body.",
    )
