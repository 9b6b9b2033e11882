"""The keep-alive HTTP/1.1 transport against real loopback servers that misbehave on cue.

Each server is a raw asyncio TCP server in the test's own loop, answering with bytes the test
writes, so that a close mid-answer, an idle close, or bytes that are not HTTP are real.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from django_integration.http1 import Http1Transport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=10)
TIMEOUT = httpx.Timeout(connect=1.0, read=0.5, write=1.0, pool=0.3)


class RawServer:
    """Counts connections; `answer` is called once per request read."""

    def __init__(self, answer: Callable[[int], Awaitable[bytes | None]]) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()

    async def close_idle_connections(self) -> None:
        for writer in self._writers:
            writer.close()
        await asyncio.sleep(0.05)  # the client's side sees the FIN

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                self.requests.append(head + await _body(reader, head))
                answer = await self.answer(len(self.requests))
                if answer is None:  # close without answering
                    writer.close()
                    return
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


async def _body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            return await reader.readexactly(int(value))
    return b""


def ok(body: bytes = b'{"ok":true}', *headers: bytes) -> bytes:
    head = [b"HTTP/1.1 200 OK", b"content-type: application/json", *headers]
    head.append(b"content-length: %d" % len(body))
    return b"\r\n".join(head) + b"\r\n\r\n" + body


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[RawServer]]]:
    servers: list[RawServer] = []

    async def start(answer: Callable[[int], Awaitable[bytes | None]]) -> RawServer:
        server = RawServer(answer)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def client(**limits: int) -> httpx.AsyncClient:
    transport = Http1Transport(httpx.Limits(**limits) if limits else LIMITS)
    return httpx.AsyncClient(transport=transport, timeout=TIMEOUT)


def always(answer: bytes) -> Callable[[int], Awaitable[bytes]]:
    async def respond(_: int) -> bytes:
        return answer

    return respond


async def test_calls_one_after_another_share_one_connection(serve) -> None:
    server = await serve(always(ok()))
    async with client() as http:
        answers = [await http.get(f"{server.url}/api/{n}/") for n in range(3)]
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"ok": True})] * 3
    assert server.connections == 1
    assert server.requests[2].startswith(b"GET /api/2/ HTTP/1.1\r\n")


async def test_a_body_and_a_query_are_sent_as_given(serve) -> None:
    server = await serve(always(ok()))
    async with client() as http:
        await http.post(f"{server.url}/api/x/?a=1&b=%20", json={"name": "é"})
    request = server.requests[0]
    assert request.startswith(b"POST /api/x/?a=1&b=%20 HTTP/1.1\r\n")
    assert request.endswith(b"\r\n\r\n" + '{"name":"é"}'.encode())


async def test_an_idle_connection_the_server_closed_is_replaced(serve) -> None:
    server = await serve(always(ok()))
    async with client() as http:
        first = await http.get(f"{server.url}/a/")
        await server.close_idle_connections()
        second = await http.get(f"{server.url}/b/")
    assert (first.status_code, second.status_code) == (200, 200)
    assert server.connections == 2


async def test_connection_close_is_honoured(serve) -> None:
    server = await serve(always(ok(b"{}", b"connection: close")))
    async with client() as http:
        for _ in range(2):
            assert (await http.get(f"{server.url}/a/")).status_code == 200
    assert server.connections == 2


async def test_chunked_and_gzipped_answers_are_read_whole(serve) -> None:
    packed = gzip.compress(b'{"items":[1,2,3]}')
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (packed[:7], packed[7:]))
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
        b"transfer-encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    )
    server = await serve(always(answer))
    async with client() as http:
        response = await http.get(f"{server.url}/a/")
        again = await http.get(f"{server.url}/a/")
    assert response.json() == again.json() == {"items": [1, 2, 3]}
    assert server.connections == 1


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("http://127.0.0.1:1/a/")


async def test_no_answer_is_a_read_timeout(serve) -> None:
    async def never(_: int) -> bytes:
        await asyncio.sleep(5)
        return ok()

    server = await serve(never)
    async with client() as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"{server.url}/a/")


async def test_a_close_before_the_answer_is_a_read_error(serve) -> None:
    async def hang_up(_: int) -> None:
        return None

    server = await serve(hang_up)
    async with client() as http:
        with pytest.raises(httpx.ReadError):
            await http.get(f"{server.url}/a/")


async def test_a_close_halfway_through_the_answer_is_a_read_error(serve) -> None:
    server = await serve(always(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"))
    async with client() as http:
        task = asyncio.ensure_future(http.get(f"{server.url}/a/"))
        await asyncio.sleep(0.1)
        await server.close_idle_connections()
        with pytest.raises(httpx.ReadError):
            await task


async def test_bytes_that_are_not_http_are_a_protocol_error(serve) -> None:
    server = await serve(always(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"))
    async with client() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(f"{server.url}/a/")


async def test_calls_beyond_the_connection_limit_wait_then_time_out(serve) -> None:
    async def slow(_: int) -> bytes:
        await asyncio.sleep(0.45)
        return ok()

    server = await serve(slow)
    async with client(max_connections=1, max_keepalive_connections=1) as http:
        first = asyncio.ensure_future(http.get(f"{server.url}/a/"))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):
            await http.get(f"{server.url}/b/")
        assert (await first).status_code == 200


async def test_a_cancelled_call_leaves_no_answer_behind_for_the_next(serve) -> None:
    async def numbered(n: int) -> bytes:
        await asyncio.sleep(0.2 if n == 1 else 0)
        return ok(b'{"n":%d}' % n)

    server = await serve(numbered)
    async with client() as http:
        cancelled = asyncio.ensure_future(http.get(f"{server.url}/a/"))
        await asyncio.sleep(0.05)
        cancelled.cancel()
        next_answer = await http.get(f"{server.url}/b/")
    assert next_answer.json() == {"n": 2}
    assert server.connections == 2
