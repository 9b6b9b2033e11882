"""Request bodies as agents send them: size-limited, optionally gzip or deflate compressed, and
JSON or NDJSON for the native routes.

The size limit applies twice: to the bytes on the wire and to what they decompress to, so a
small compressed body cannot expand into an unbounded one.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from starlette.requests import Request

from service.problems import Problem

JSON = "application/json"
NDJSON = "application/x-ndjson"
PROTOBUF = "application/x-protobuf"
_NDJSON_ALIASES = frozenset({NDJSON, "application/ndjson", "application/jsonl"})
# zlib's window bits: 16 + 15 reads gzip only; 32 + 15 detects a zlib or a gzip header.
_GZIP_BITS = 16 + zlib.MAX_WBITS
_DEFLATE_BITS = 32 + zlib.MAX_WBITS


def media_type(request: Request, default: str = JSON) -> str:
    """The request's media type without parameters, lower-cased."""
    header = request.headers.get("content-type")
    if not header:
        return default
    return header.split(";", 1)[0].strip().lower()


def native_format(request: Request) -> str:
    """JSON or NDJSON for `/telemetry` and `/telemetry/batch`; 415 for anything else."""
    kind = media_type(request)
    if kind in _NDJSON_ALIASES:
        return NDJSON
    if kind == JSON or kind.endswith("+json"):
        return JSON
    raise Problem(
        415,
        f"Content-Type {kind} is not accepted here; send {JSON} or {NDJSON}.",
        headers={"Accept-Post": f"{JSON}, {NDJSON}"},
    )


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The decoded body, or 413 once the wire bytes or the decompressed bytes pass the limit."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    coding = _content_coding(request)

    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    body = b"".join(chunks)

    if coding == "identity":
        return body
    return _decompress(body, _GZIP_BITS if coding == "gzip" else _DEFLATE_BITS, max_bytes)


def parse_json(body: bytes) -> Any:
    # Python's json takes NaN and Infinity literals; they parse to floats that the point
    # validation then rejects as non-finite, item by item. Besides JSONDecodeError, json raises
    # a plain ValueError for an integer of more than 4,300 digits (CVE-2020-10735's guard) and
    # RecursionError for deep nesting: all three are a malformed body, not a server fault.
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Problem(
            400, f"The request body is not valid JSON: {exc}.", title="Malformed JSON"
        ) from exc


def parse_ndjson(body: bytes) -> list[Any]:
    """One point per line; blank lines are skipped, a malformed line fails the whole body."""
    items: list[Any] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except (ValueError, RecursionError) as exc:  # see parse_json
            raise Problem(
                400, f"Line {number} is not valid JSON: {exc}.", title="Malformed JSON"
            ) from exc
    return items


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


def _decompress(body: bytes, window_bits: int, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(window_bits)
    try:
        plain = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise Problem(400, f"The compressed body cannot be decoded: {exc}.") from exc

    if len(plain) > max_bytes or inflater.unconsumed_tail:
        raise _too_large(max_bytes)
    if not inflater.eof:
        raise Problem(400, "The compressed body is truncated.")
    return plain


def _too_large(max_bytes: int) -> Problem:
    return Problem(
        413,
        f"The request body is over the limit of {max_bytes} bytes.",
        title="Content Too Large",
    )
