"""An httpx transport of keep-alive HTTP/1.1 connections over plain TCP, parsed by httptools.

The middleware calls one backend, one request at a time per connection, with small bodies.
For that, a general client's machinery is most of a call's cost: aiohttp under httpx spent
about 0.45 ms of CPU a call on this machine, a quarter of a cache miss. Here a connection is
an asyncio protocol feeding uvicorn's own parser (httptools), and a call is one write and the
parsed answer. Failures are raised as the httpx errors the retry policy sorts by whether the
request may have reached the backend (see retry_policy.py). Writes are not timed: a request
is one buffered write of a small body, and the read timeout bounds the whole exchange.
"""

from __future__ import annotations

import asyncio
import time

import httptools
import httpx

# Uvicorn, the backend's server, closes a connection idle for 5 s: leave a margin, so that a
# connection is not reused in the instant the server closes it.
KEEPALIVE_MARGIN_SECONDS = 1.0


class NotSent(ConnectionError):
    """The connection was found closed before a byte of the request was written."""


class _Exchange:
    """The answer being read on one connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done: asyncio.Future[None] = loop.create_future()
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.keep_alive = False


class Connection(asyncio.Protocol):
    """One TCP connection: writes a request, parses its answer, then is free again."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._exchange: _Exchange | None = None
        self.closed = False
        self.idle_since = time.monotonic()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"The backend's answer is not HTTP: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionResetError("The backend closed the connection."))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._exchange is not None:
            self._exchange.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._exchange is not None:
            self._exchange.status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self._exchange is not None:
            self._exchange.body.append(body)

    def on_message_complete(self) -> None:
        exchange, self._exchange = self._exchange, None
        if exchange is None:
            # An answer nobody asked for: the connection can no longer be trusted.
            self.close()
            return
        exchange.keep_alive = self._parser.should_keep_alive()
        if not exchange.done.done():
            exchange.done.set_result(None)

    # calls

    async def exchange(self, head: bytes, body: bytes) -> _Exchange:
        """Send one request and wait for its whole answer; the caller bounds the wait."""
        if self.closed or self._transport is None or self._transport.is_closing():
            raise NotSent("The connection closed before the request was sent.")
        exchange = self._exchange = _Exchange(self._loop)
        self._transport.write(head + body if body else head)
        await exchange.done
        return exchange

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _fail(self, exc: Exception) -> None:
        exchange, self._exchange = self._exchange, None
        if exchange is not None and not exchange.done.done():
            exchange.done.set_exception(exc)


class Http1Transport(httpx.AsyncBaseTransport):
    """Keep-alive connections to the hosts a client calls, at most `max_connections` busy."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._slots = asyncio.Semaphore(limits.max_connections or 100)
        self._max_idle = limits.max_keepalive_connections or 0
        self._keepalive_seconds = max(0.0, (limits.keepalive_expiry or 0.0))
        self._idle: dict[tuple[str, int], list[Connection]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        await self._acquire_slot(request, timeouts.get("pool"))
        try:
            return await self._send(request, timeouts)
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        self._closed = True
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def _acquire_slot(self, request: httpx.Request, timeout: float | None) -> None:
        if not self._slots.locked():
            # A free slot is taken without waiting: no pool timer to arm and cancel.
            await self._slots.acquire()
            return
        try:
            async with asyncio.timeout(timeout):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout("No free connection to the backend.", request=request) from exc

    async def _send(
        self, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> httpx.Response:
        address = (request.url.host, request.url.port or 80)
        connection = self._idle_connection(address) or await self._connect(
            request, address, timeouts.get("connect")
        )
        body = await request.aread()
        reusable = False
        try:
            async with asyncio.timeout(timeouts.get("read")):
                exchange = await connection.exchange(_head(request), body)
            reusable = exchange.keep_alive and not connection.closed
        except TimeoutError as exc:
            raise httpx.ReadTimeout("The backend did not answer in time.", request=request) from exc
        except NotSent as exc:
            # The retry policy may repeat any call that never left, a POST included.
            raise httpx.ConnectError(str(exc), request=request) from exc
        except ConnectionError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc
        finally:
            self._release(address, connection, reusable)

        return httpx.Response(
            exchange.status,
            headers=exchange.headers,
            content=b"".join(exchange.body),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    def _idle_connection(self, address: tuple[str, int]) -> Connection | None:
        idle = self._idle.get(address)
        oldest_usable = time.monotonic() - self._keepalive_seconds + KEEPALIVE_MARGIN_SECONDS
        while idle:
            connection = idle.pop()
            if not connection.closed and connection.idle_since > oldest_usable:
                return connection
            connection.close()
        return None

    async def _connect(
        self, request: httpx.Request, address: tuple[str, int], timeout: float | None
    ) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    lambda: Connection(loop), address[0], address[1]
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(
                "Connecting to the backend timed out.", request=request
            ) from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        return connection

    def _release(self, address: tuple[str, int], connection: Connection, reusable: bool) -> None:
        idle = self._idle.setdefault(address, [])
        if not reusable or self._closed or len(idle) >= self._max_idle:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)


def _head(request: httpx.Request) -> bytes:
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), request.url.raw_path)]
    lines.extend(b"%s: %s\r\n" % (name, value) for name, value in request.headers.raw)
    lines.append(b"\r\n")
    return b"".join(lines)
