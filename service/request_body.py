"""Request bodies read within a size limit, optionally gzip or deflate compressed.

The limit is checked before the body is read (a declared Content-Length over it), while it is
read (the bytes counted as they stream in, so a chunked body without Content-Length cannot pass
it), and after decompression, so a small compressed body cannot expand into an unbounded one.
Every route that takes a body reads it through `read_body`.
"""

from __future__ import annotations

import zlib

from starlette.requests import ClientDisconnect, Request

from service.problems import Problem

# zlib's window bits: 16 + 15 reads gzip only; 32 + 15 detects a zlib or a gzip header.
_GZIP_BITS = 16 + zlib.MAX_WBITS
_DEFLATE_BITS = 32 + zlib.MAX_WBITS


async def read_body(request: Request, max_bytes: int, *, limit: str) -> bytes:
    """The decoded body, or 413 once the wire bytes or the decompressed bytes pass the limit.

    `limit` names the setting (without its `OBSERVER_` prefix) in the 413's body.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes, limit)
    coding = _content_coding(request)

    chunks: list[bytes] = []
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise too_large(max_bytes, limit)
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody is left to read the answer, but the log and the metrics should blame the
        # client, not count a server error.
        raise Problem(
            400,
            f"The client closed the connection after {received} bytes of its body.",
            title="Client Disconnected",
        ) from None
    body = b"".join(chunks)

    if coding == "identity":
        return body
    return _decompress(body, _GZIP_BITS if coding == "gzip" else _DEFLATE_BITS, max_bytes, limit)


def too_large(max_bytes: int, limit: str) -> Problem:
    return Problem(
        413,
        f"The request body is over the limit of {max_bytes} bytes.",
        title="Content Too Large",
        extra={"limit": limit, "limit_value": max_bytes},
    )


def _content_coding(request: Request) -> str:
    coding = request.headers.get("content-encoding", "identity").strip().lower()
    if coding in {"", "identity"}:
        return "identity"
    if coding in {"gzip", "x-gzip"}:
        return "gzip"
    if coding == "deflate":
        return "deflate"
    # RFC 9110 section 15.5.16: an unsupported content coding is a 415.
    raise Problem(
        415,
        f"Content-Encoding {coding} is not supported; send gzip, deflate or identity.",
        headers={"Accept-Encoding": "gzip, deflate"},
    )


def _decompress(body: bytes, window_bits: int, max_bytes: int, limit: str) -> bytes:
    inflater = zlib.decompressobj(window_bits)
    try:
        plain = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise Problem(400, f"The compressed body cannot be decoded: {exc}.") from exc

    if len(plain) > max_bytes or inflater.unconsumed_tail:
        raise too_large(max_bytes, limit)
    if not inflater.eof:
        raise Problem(400, "The compressed body is truncated.")
    return plain
