"""aiohttp's failures become the httpx errors that tell whether the backend got the call."""

import aiohttp
import httpx
import pytest

from django_integration.transport import _precise_error

REQUEST = httpx.Request("POST", "http://127.0.0.1:1/api/core/configurations/")


def connector_error(cls: type[aiohttp.ClientConnectorError]) -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 1, False, True, None, None, None)
    return cls(key, ConnectionRefusedError(111, "refused"))


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (connector_error(aiohttp.ClientConnectorError), httpx.ConnectError),
        (aiohttp.ConnectionTimeoutError("connect timed out"), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError("read timed out"), httpx.ReadTimeout),
        (aiohttp.ServerDisconnectedError(), httpx.ReadError),
        (aiohttp.ClientOSError(104, "reset by peer"), httpx.ReadError),
    ],
)
def test_each_failure_maps_to_one_httpx_error(cause, expected) -> None:
    assert type(_precise_error(cause, REQUEST)) is expected


@pytest.mark.parametrize("method", ["PUT", "DELETE", "GET"])
@pytest.mark.parametrize(
    "cause",
    [connector_error(aiohttp.ClientConnectorError), aiohttp.ConnectionTimeoutError("timed out")],
)
def test_a_connect_failure_may_follow_an_attempt_aiohttp_resent(method, cause) -> None:
    # aiohttp repeats idempotent methods once when a reused connection fails: the first
    # attempt may have landed, so the failure cannot say the backend never got the call.
    request = httpx.Request(method, "http://127.0.0.1:1/api/core/configurations/x/")
    assert type(_precise_error(cause, request)) is httpx.ReadError


def test_other_failures_are_left_alone() -> None:
    assert _precise_error(ValueError("not a transport failure"), REQUEST) is None
