"""`POST /auth/keys` reads its body like every other JSON route: within the size limit, even
chunked, and through the strict reader (issue #7). It once read any body whole, 6.5 GB
included, and let a duplicate key pick the scopes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx

from tests.api_keys import unique_name

MEBIBYTE = 1024 * 1024  # OBSERVER_REQUEST_MAX_BODY_BYTES by default
JSON = {"Content-Type": "application/json"}


def padded_new_key(name: str, size: int) -> bytes:
    """A valid key creation padded with JSON whitespace to exactly `size` bytes."""
    body = json.dumps({"name": name, "scopes": ["crud:read"]}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


def chunks(body: bytes) -> Iterator[bytes]:
    yield from (body[start : start + 64 * 1024] for start in range(0, len(body), 64 * 1024))


def too_large() -> dict:
    return {
        "type": "about:blank",
        "title": "Content Too Large",
        "status": 413,
        "detail": f"The request body is over the limit of {MEBIBYTE} bytes.",
        "instance": "/auth/keys",
        "limit": "request_max_body_bytes",
        "limit_value": MEBIBYTE,
    }


def _names(api: httpx.Client) -> set[str]:
    return {item["name"] for item in api.get("/auth/keys").json()["data"]}


def test_a_key_body_at_the_limit_is_read_and_one_byte_more_is_413(api) -> None:
    at_limit, past_limit = unique_name("at-limit"), unique_name("past-limit")

    created = api.post("/auth/keys", content=padded_new_key(at_limit, MEBIBYTE), headers=JSON)
    refused = api.post("/auth/keys", content=padded_new_key(past_limit, MEBIBYTE + 1), headers=JSON)

    assert (created.status_code, created.json()["data"]["name"]) == (201, at_limit)
    assert (refused.status_code, refused.json()) == (413, too_large())
    assert past_limit not in _names(api)


def test_a_chunked_key_body_is_counted_as_it_streams(api) -> None:
    name = unique_name("chunked")
    body = padded_new_key(name, MEBIBYTE + 1)

    refused = api.post("/auth/keys", content=chunks(body), headers=JSON)

    assert refused.request.headers.get("content-length") is None  # really chunked
    assert (refused.status_code, refused.json()) == (413, too_large())
    assert name not in _names(api)


def test_a_duplicate_key_in_a_key_body_is_422_naming_it(api) -> None:
    name = unique_name("twice")
    body = f'{{"name": "{name}", "scopes": ["crud:read"], "scopes": ["admin"]}}'.encode()

    refused = api.post("/auth/keys", content=body, headers=JSON)

    assert (refused.status_code, refused.json()) == (
        422,
        {
            "type": "about:blank",
            "title": "Unacceptable JSON value",
            "status": 422,
            "detail": "scopes: The key appears more than once.",
            "instance": "/auth/keys",
            "errors": [{"field": "scopes", "message": "The key appears more than once."}],
        },
    )
    assert name not in _names(api)


def test_a_key_body_that_is_not_json_is_refused_before_it_is_parsed(api) -> None:
    malformed = api.post("/auth/keys", content=b'{"name": "x",', headers=JSON)
    as_text = api.post(
        "/auth/keys",
        content=json.dumps({"name": unique_name("text"), "scopes": ["crud:read"]}),
        headers={"Content-Type": "text/plain"},
    )

    assert (malformed.status_code, malformed.json()["title"]) == (400, "Malformed JSON")
    assert (as_text.status_code, as_text.headers["Accept-Post"]) == (415, "application/json")
