"""Every request limit at its edge and just past it, on real servers (issue #7).

`tight` is a middleware with small limits, so each edge is a small body; the defaults are
checked at their own edge on the shared server. Each refusal is the exact problem body.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.backend_server import BackendServer
from tests.middleware_server import MiddlewareServer

MAX_BODY, MAX_DEPTH, MAX_STRING, MAX_LIST, MAX_KEYS, MAX_PAGE = 2048, 6, 64, 5, 8, 20
CONFIGS = "core.configurations"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def tight(backend: BackendServer, tmp_path_factory: pytest.TempPathFactory):
    env = {
        **backend.env,
        "OBSERVER_REQUEST_MAX_BODY_BYTES": str(MAX_BODY),
        "OBSERVER_REQUEST_MAX_JSON_DEPTH": str(MAX_DEPTH),
        "OBSERVER_REQUEST_MAX_STRING_LENGTH": str(MAX_STRING),
        "OBSERVER_REQUEST_MAX_LIST_LENGTH": str(MAX_LIST),
        "OBSERVER_REQUEST_MAX_OBJECT_KEYS": str(MAX_KEYS),
        "OBSERVER_REQUEST_MAX_PAGE_SIZE": str(MAX_PAGE),
    }
    with MiddlewareServer(tmp_path_factory.mktemp("tight"), env=env) as server:
        yield server


@pytest.fixture
def tight_api(tight: MiddlewareServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tight.url, headers=tight.headers, timeout=30) as client:
        yield client


def limit_problem(instance: str, limit: str, value: int, field: str, message: str) -> dict:
    return {
        "type": "about:blank",
        "title": "Request limit exceeded",
        "status": 422,
        "detail": f"{field}: {message} The limit is {limit} = {value}.",
        "instance": instance,
        "errors": [{"field": field, "message": message}],
        "limit": limit,
        "limit_value": value,
    }


def too_large(instance: str, value: int) -> dict:
    return {
        "type": "about:blank",
        "title": "Content Too Large",
        "status": 413,
        "detail": f"The request body is over the limit of {value} bytes.",
        "instance": instance,
        "limit": "request_max_body_bytes",
        "limit_value": value,
    }


def padded_list_request(size: int) -> bytes:
    """A valid `/crud` list call, padded with JSON whitespace to exactly `size` bytes."""
    body = json.dumps({"operation": "list", "entity_type": CONFIGS}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


def create_config(value: object) -> dict:
    return {
        "operation": "create",
        "entity_type": CONFIGS,
        "data": {"key": f"limit-{uuid.uuid4().hex[:8]}", "value": value},
    }


def post_json(client: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return client.post(path, content=body, headers={"Content-Type": "application/json"})


# --- body size ---------------------------------------------------------------------------


def test_a_body_at_the_size_limit_is_read_and_one_byte_more_is_413(tight_api) -> None:
    at_limit = post_json(tight_api, "/crud", padded_list_request(MAX_BODY))
    past_limit = post_json(tight_api, "/crud", padded_list_request(MAX_BODY + 1))

    assert at_limit.status_code == 200
    assert (past_limit.status_code, past_limit.headers["content-type"]) == (413, PROBLEM)
    assert past_limit.json() == too_large("/crud", MAX_BODY)


def test_a_chunked_body_without_content_length_is_counted_as_it_streams(tight_api) -> None:
    def chunks(body: bytes) -> Iterator[bytes]:
        yield from (body[start : start + 100] for start in range(0, len(body), 100))

    headers = {"Content-Type": "application/json"}
    at_limit = tight_api.post(
        "/crud", content=chunks(padded_list_request(MAX_BODY)), headers=headers
    )
    past = tight_api.post(
        "/crud", content=chunks(padded_list_request(MAX_BODY + 1)), headers=headers
    )

    assert at_limit.request.headers.get("content-length") is None  # really chunked
    assert at_limit.status_code == 200
    assert (past.status_code, past.json()) == (413, too_large("/crud", MAX_BODY))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/crud/bulk"),
        ("POST", "/api/core/configurations/"),
        ("POST", "/api/core/configurations/bulk/"),
        ("PATCH", "/api/core/configurations/abc/"),
        ("PUT", "/api/core/configurations/abc/"),
        ("POST", "/telemetry/rules"),
    ],
)
def test_every_json_route_refuses_an_oversize_body(tight_api, method, path) -> None:
    body = b'{"items": [' + b" " * MAX_BODY + b"]}"
    response = tight_api.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.json()) == (413, too_large(path, MAX_BODY))


def test_the_default_body_limit_is_one_mebibyte(api) -> None:
    mebibyte = 1024 * 1024
    assert post_json(api, "/crud", padded_list_request(mebibyte)).status_code == 200
    past = post_json(api, "/crud", padded_list_request(mebibyte + 1))
    assert (past.status_code, past.json()) == (413, too_large("/crud", mebibyte))


# --- shape of the JSON ---------------------------------------------------------------------


def nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_nesting_at_the_depth_limit_passes_and_one_level_more_is_422(tight_api) -> None:
    # The body is level 1, data level 2, value level 3: `value` may hold 4 levels in all.
    at_limit = tight_api.post("/crud", json=create_config(nested(MAX_DEPTH - 2)))
    past = tight_api.post("/crud", json=create_config(nested(MAX_DEPTH - 1)))

    assert at_limit.status_code == 201, at_limit.text
    field = "data.value.a.a.a.a"  # value is level 3, so its fourth "a" is level 7
    assert (past.status_code, past.json()) == (
        422,
        limit_problem(
            "/crud", "request_max_json_depth", MAX_DEPTH, field, "Nested deeper than 6 levels."
        ),
    )


def test_the_default_depth_limit_is_32(api) -> None:
    at_limit = api.post("/crud", json=create_config(nested(30)))
    past = api.post("/crud", json=create_config(nested(31)))

    assert at_limit.status_code == 201, at_limit.text
    assert past.status_code == 422
    assert (past.json()["limit"], past.json()["limit_value"]) == ("request_max_json_depth", 32)


def test_strings_at_the_length_limit_pass_and_one_character_more_is_422(tight_api) -> None:
    at_limit = tight_api.post("/crud", json=create_config({"s": "é" * MAX_STRING}))
    past = tight_api.post("/crud", json=create_config({"s": "é" * (MAX_STRING + 1)}))

    assert at_limit.status_code == 201, at_limit.text  # characters, not UTF-8 bytes
    message = f"Longer than {MAX_STRING} characters."
    assert (past.status_code, past.json()) == (
        422,
        limit_problem("/crud", "request_max_string_length", MAX_STRING, "data.value.s", message),
    )


def test_object_keys_are_strings_under_the_same_length_limit(tight_api) -> None:
    long_key = "k" * (MAX_STRING + 1)
    response = tight_api.post("/crud", json=create_config({long_key: 1}))

    message = f"Longer than {MAX_STRING} characters."
    field = f"data.value.{'k' * 40}…"  # a key shown in a path is cut at 40 characters
    assert (response.status_code, response.json()) == (
        422,
        limit_problem("/crud", "request_max_string_length", MAX_STRING, field, message),
    )


def test_lists_at_the_length_limit_pass_and_one_item_more_is_422(tight_api) -> None:
    at_limit = tight_api.post("/crud", json=create_config(list(range(MAX_LIST))))
    past = tight_api.post("/crud", json=create_config(list(range(MAX_LIST + 1))))

    assert at_limit.status_code == 201, at_limit.text
    message = f"More than {MAX_LIST} items."
    assert (past.status_code, past.json()) == (
        422,
        limit_problem("/crud", "request_max_list_length", MAX_LIST, "data.value", message),
    )


def test_objects_at_the_key_limit_pass_and_one_key_more_is_422(tight_api) -> None:
    at_limit = tight_api.post("/crud", json=create_config({f"k{n}": n for n in range(MAX_KEYS)}))
    past = tight_api.post("/crud", json=create_config({f"k{n}": n for n in range(MAX_KEYS + 1)}))

    assert at_limit.status_code == 201, at_limit.text
    message = f"More than {MAX_KEYS} keys."
    assert (past.status_code, past.json()) == (
        422,
        limit_problem("/crud", "request_max_object_keys", MAX_KEYS, "data.value", message),
    )


def test_a_refused_body_never_reaches_the_backend_or_the_audit_trail(tight_api) -> None:
    before = tight_api.get("/audit", params={"page_size": 1}).json()["page_info"]["total_count"]
    body = create_config(list(range(MAX_LIST + 1)))
    key = body["data"]["key"]

    assert tight_api.post("/crud", json=body).status_code == 422
    listed = tight_api.get("/api/core/configurations/", params={"key": key}).json()
    after = tight_api.get("/audit", params={"page_size": 1}).json()["page_info"]["total_count"]
    assert (listed["page_info"]["total_count"], after) == (0, before)


# --- page sizes and query values -------------------------------------------------------------


def page_problem(instance: str) -> dict:
    message = f"Must be at most {MAX_PAGE}."
    return limit_problem(instance, "request_max_page_size", MAX_PAGE, "page_size", message)


def test_page_sizes_at_the_limit_pass_and_one_more_is_422(tight_api) -> None:
    envelope = {"operation": "list", "entity_type": CONFIGS}
    assert tight_api.post("/crud", json=envelope | {"page_size": MAX_PAGE}).status_code == 200
    crud = tight_api.post("/crud", json=envelope | {"page_size": MAX_PAGE + 1})
    assert (crud.status_code, crud.json()) == (422, page_problem("/crud"))

    for path in ("/api/core/configurations/", "/audit", "/audit/core/configurations/abc"):
        at_limit = tight_api.get(path, params={"page_size": MAX_PAGE})
        past = tight_api.get(path, params={"page_size": MAX_PAGE + 1})
        assert (path, at_limit.status_code) == (path, 200)
        assert (path, past.status_code, past.json()) == (path, 422, page_problem(path))


def test_rest_filter_values_share_the_string_limit(tight_api) -> None:
    path = "/api/core/configurations/"
    at_limit = tight_api.get(path, params={"key__icontains": "k" * MAX_STRING})
    past = tight_api.get(path, params={"key__icontains": "k" * (MAX_STRING + 1)})

    assert at_limit.status_code == 200
    message = f"Longer than {MAX_STRING} characters."
    assert (past.status_code, past.json()) == (
        422,
        limit_problem(path, "request_max_string_length", MAX_STRING, "key__icontains", message),
    )
