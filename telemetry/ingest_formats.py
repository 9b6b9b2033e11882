"""Request bodies as agents send them: JSON or NDJSON for the native routes.

Bodies are read by `service.request_body.read_body` (size limit on the wire and after gzip or
deflate). Points keep their own per-item rules (`telemetry.points`): a bad value fails its item,
not the batch, so this reader stays Python's fast `json` rather than the strict CRUD reader.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from starlette.requests import Request

from service.problems import Problem

JSON = "application/json"
NDJSON = "application/x-ndjson"
PROTOBUF = "application/x-protobuf"
_NDJSON_ALIASES = frozenset({NDJSON, "application/ndjson", "application/jsonl"})


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


def parse_json(body: bytes) -> Any:
    # Python's json takes NaN and Infinity literals; they parse to floats that the point
    # validation then rejects as non-finite, item by item.
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Problem(
            400, f"The request body is not valid JSON: {json_failure(exc)}.", title="Malformed JSON"
        ) from exc


def parse_ndjson(body: bytes) -> list[Any]:
    """One point per line; blank lines are skipped, a malformed line fails the whole body."""
    items: list[Any] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except (ValueError, RecursionError) as exc:
            raise Problem(
                400,
                f"Line {number} is not valid JSON: {json_failure(exc)}.",
                title="Malformed JSON",
            ) from exc
    return items


def json_failure(exc: ValueError | RecursionError) -> str:
    """Why `json.loads` refused a body, in plain words rather than the interpreter's."""
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, UnicodeDecodeError):
        return f"it is not valid UTF-8 (byte {exc.start})"
    # The one other ValueError json raises: an integer past Python's digit limit, the guard
    # against quadratic int() conversion (CVE-2020-10735).
    return f"an integer has more than {sys.get_int_max_str_digits()} digits"
