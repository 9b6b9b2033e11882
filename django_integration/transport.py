"""The socket transport under the shared httpx client.

httpx's own transport (httpcore on anyio) costs about a millisecond per call
more than aiohttp's on this machine, and aiohttp under httpx about 0.2 ms more
than http1.py's connections. So the client keeps httpx's API, timeouts and
errors, and hands the bytes to http1.py for a plain HTTP backend, to aiohttp
(through `httpx-aiohttp`) for one behind TLS. Both others stay available as a
setting.
"""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from .http1 import Http1Transport


class AiohttpBackendTransport(AiohttpTransport):
    """aiohttp underneath, with failures sorted the way the retry policy needs them.

    httpx-aiohttp reports a refused connection and one lost mid-call alike, as a
    connect timeout. The retry policy must tell "the backend never got it" (refused,
    connect timeout) from "it may have" (reset or closed mid-call), so each aiohttp
    failure is mapped here to the httpx error that says which.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.TransportError as exc:
            precise = _precise_error(exc.__cause__, request)
            if precise is None:
                raise
            raise precise from exc.__cause__


# aiohttp sends these once more by itself when a reused connection fails mid-call (its
# ClientSession retries persistent connections): a refusal or connect timeout it then reports
# may follow an attempt that reached the backend, so for them it proves nothing was sent.
_RESENT_BY_AIOHTTP = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


def _precise_error(cause: BaseException | None, request: httpx.Request) -> Exception | None:
    message = str(cause)
    connect_failed = isinstance(
        cause, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError
    )
    if connect_failed and request.method in _RESENT_BY_AIOHTTP:
        return httpx.ReadError(
            f"{message} (perhaps after an attempt aiohttp resent)", request=request
        )
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(cause, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(cause, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(cause, aiohttp.ClientConnectionError):
        return httpx.ReadError(message, request=request)
    return None


def socket_transport(kind: str, limits: httpx.Limits, scheme: str) -> httpx.AsyncBaseTransport:
    # http1.py speaks plain TCP only; a backend behind TLS gets aiohttp's sockets instead.
    if kind == "http1" and scheme == "http":
        return Http1Transport(limits)
    if kind in ("http1", "aiohttp"):
        return AiohttpBackendTransport(limits=limits, trust_env=False)
    return httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
