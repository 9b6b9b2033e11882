"""Hostile JSON over HTTP: each class gets its own clear 4xx on every JSON route (issue #7).

Raw bodies, since a client library would refuse to encode most of these. The reader's rules
are in service/strict_json.py; test_json_strict_reader.py checks them one by one.
"""

from __future__ import annotations

import uuid

import pytest

JSON = {"Content-Type": "application/json"}
PROBLEM = "application/problem+json"
ENVELOPE = '{{"operation": "create", "entity_type": "core.configurations", "data": {}}}'


def config_body(value: str) -> bytes:
    """A create of core.configurations whose `value` is the raw JSON text `value`."""
    key = f"hostile-{uuid.uuid4().hex[:8]}"
    return ENVELOPE.format(f'{{"key": "{key}", "value": {value}}}').encode()


def unacceptable(field: str, message: str, instance: str = "/crud") -> dict:
    return {
        "type": "about:blank",
        "title": "Unacceptable JSON value",
        "status": 422,
        "detail": f"{field}: {message}",
        "instance": instance,
        "errors": [{"field": field, "message": message}],
    }


def malformed(reason: str, instance: str = "/crud") -> dict:
    return {
        "type": "about:blank",
        "title": "Malformed JSON",
        "status": 400,
        "detail": f"The request body is not valid JSON: {reason}.",
        "instance": instance,
    }


OUT_OF_RANGE = "The number is outside the 64-bit integer range."


@pytest.mark.parametrize(
    ("raw_value", "message"),
    [
        ("NaN", "NaN is not a number JSON allows; send a finite number."),
        ("Infinity", "Infinity is not a number JSON allows; send a finite number."),
        ("-Infinity", "-Infinity is not a number JSON allows; send a finite number."),
        ("1e309", "The number is too large for a 64-bit float."),
        ("-1.5e400", "The number is too large for a 64-bit float."),
        (str(2**63), OUT_OF_RANGE),
        (str(-(2**63) - 1), OUT_OF_RANGE),
        ("9" * 5_000, OUT_OF_RANGE),  # past Python's 4,300-digit guard: still a clean 422
        ('"a\\u0000b"', "Holds the control character U+0000."),
        ('"bell\\u0007"', "Holds the control character U+0007."),
        ('"esc\\u001b[31m"', "Holds the control character U+001B."),
        ('"del\\u007f"', "Holds the control character U+007F."),
        ('"\\ud800"', "Holds a lone surrogate, which is not valid Unicode."),
    ],
)
def test_values_json_cannot_carry_safely_are_422_with_their_place(api, raw_value, message):
    response = api.post("/crud", content=config_body(f'{{"x": [{raw_value}]}}'), headers=JSON)

    assert response.headers["content-type"] == PROBLEM
    assert (response.status_code, response.json()) == (
        422,
        unacceptable("data.value.x.0", message),
    )


def test_numbers_at_the_edges_of_the_64_bit_range_pass(api) -> None:
    body = config_body(f'{{"big": {2**63 - 1}, "small": {-(2**63)}, "float": 1.7e308}}')
    response = api.post("/crud", content=body, headers=JSON)

    assert response.status_code == 201, response.text
    assert response.json()["data"]["value"] == {
        "big": 2**63 - 1,
        "small": -(2**63),
        "float": 1.7e308,
    }


def test_tab_line_feed_and_carriage_return_are_kept(api) -> None:
    response = api.post("/crud", content=config_body('"a\\tb\\nc\\rd"'), headers=JSON)

    assert response.status_code == 201, response.text
    assert response.json()["data"]["value"] == "a\tb\nc\rd"


def test_a_duplicate_key_is_422_naming_it(api) -> None:
    body = config_body('{"port": 1, "port": 2}')
    response = api.post("/crud", content=body, headers=JSON)

    message = "The key appears more than once."
    assert (response.status_code, response.json()) == (
        422,
        unacceptable("data.value.port", message),
    )


def test_a_duplicate_key_in_the_envelope_cannot_smuggle_a_second_operation(api) -> None:
    body = b'{"operation": "list", "operation": "create", "entity_type": "core.configurations"}'
    response = api.post("/crud", content=body, headers=JSON)

    message = "The key appears more than once."
    assert (response.status_code, response.json()) == (422, unacceptable("operation", message))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"operation": "list\xff"}', "it is not valid UTF-8 (byte 19)"),
        (b'{"operation": "li\xc3"}', "it is not valid UTF-8 (byte 17)"),
        (b'{"operation": "li\x00st"}', "Invalid control character at (line 1, column 18)"),
        (b'{"operation":\n "a\tb"}', "Invalid control character at (line 2, column 4)"),
        (
            b'\xef\xbb\xbf{"operation": "list"}',
            "Unexpected UTF-8 BOM (decode using utf-8-sig) (line 1, column 1)",
        ),
        (
            b'{"operation": "list",}',
            "Expecting property name enclosed in double quotes (line 1, column 22)",
        ),
        (b'{"operation": "list"} {}', "Extra data (line 1, column 23)"),
    ],
)
def test_text_that_is_not_json_is_400(api, body, reason) -> None:
    response = api.post("/crud", content=body, headers=JSON)

    assert (response.status_code, response.json()) == (400, malformed(reason))


def test_nesting_far_past_the_parser_is_the_depth_limit_not_a_crash(api) -> None:
    body = b'{"a": ' * 100_000 + b"1" + b"}" * 100_000
    response = api.post("/crud", content=body, headers=JSON)

    message = "Nested deeper than 32 levels."
    assert (response.status_code, response.json()) == (
        422,
        {
            "type": "about:blank",
            "title": "Request limit exceeded",
            "status": 422,
            "detail": f"body: {message} The limit is request_max_json_depth = 32.",
            "instance": "/crud",
            "errors": [{"field": "body", "message": message}],
            "limit": "request_max_json_depth",
            "limit_value": 32,
        },
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/core/configurations/", b'{"key": "k", "value": NaN}', "value"),
        ("PATCH", "/api/core/configurations/abc/", b'{"value": {"a": 1, "a": 2}}', "value.a"),
        ("PUT", "/api/core/configurations/abc/", b'{"key": "\\u0000"}', "key"),
        (
            "POST",
            "/api/core/configurations/bulk/",
            b'{"items": [{"data": Infinity}]}',
            "items.0.data",
        ),
        ("POST", "/crud/bulk", b'{"items": [], "items": []}', "items"),
        ("POST", "/telemetry/rules", b'{"name": "r", "value": -Infinity}', "value"),
    ],
)
def test_every_json_route_reads_through_the_strict_reader(api, method, path, body, field):
    response = api.request(method, path, content=body, headers=JSON)

    assert response.status_code == 422, response.text
    assert (response.json()["title"], response.json()["errors"][0]["field"]) == (
        "Unacceptable JSON value",
        field,
    )


SURROGATE = "Holds a lone surrogate, which is not valid Unicode."


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/crud", b'{"\\ud800": 1}', "\\ud800"),
        ("POST", "/crud", config_body('{"\\udfff": 1}'), "data.value.\\udfff"),
        (
            "POST",
            "/crud/bulk",
            b'{"items": [{"data": {"a\\ud800b": 1}}]}',
            "items.0.data.a\\ud800b",
        ),
        ("POST", "/api/core/configurations/", b'{"\\udc00": 1}', "\\udc00"),
        ("PATCH", "/api/core/configurations/abc/", b'{"value": {"\\ud83d": 1}}', "value.\\ud83d"),
        ("POST", "/telemetry/rules", b'{"\\ud800": "r"}', "\\ud800"),
    ],
)
def test_a_lone_surrogate_in_a_key_is_422_with_the_key_escaped(api, method, path, body, field):
    # The key once crashed the answer: a problem naming it could not be encoded as UTF-8.
    response = api.request(method, path, content=body, headers=JSON)

    assert response.headers["content-type"] == PROBLEM
    assert (response.status_code, response.json()) == (
        422,
        unacceptable(field, SURROGATE, instance=path),
    )


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_declared_json_is_415(api, content_type) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    body = b'{"operation": "list", "entity_type": "core.configurations"}'
    response = api.post("/crud", content=body, headers=headers)

    declared = content_type or "without a Content-Type"
    assert (response.status_code, response.headers["Accept-Post"]) == (415, "application/json")
    assert response.json()["detail"] == f"Send the body as application/json, not {declared}."


def test_an_empty_body_on_a_rest_write_is_400(api) -> None:
    response = api.post("/api/core/configurations/", headers=JSON)

    assert (response.status_code, response.json()["detail"]) == (
        400,
        "The request body is empty; send a JSON object.",
    )


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"key": "a\x00b"}, "key", "Holds the control character U+0000."),
        ({"key__icontains": "\x1b[2J"}, "key__icontains", "Holds the control character U+001B."),
    ],
)
def test_rest_filter_values_with_control_characters_are_422(api, params, field, message):
    response = api.get("/api/core/configurations/", params=params)

    assert (response.status_code, response.json()["errors"]) == (
        422,
        [{"field": field, "message": message}],
    )


NOT_UTF_8 = "Is not valid UTF-8 once percent-decoded."


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/core/configurations/?key=%ff%fe", "key"),
        ("/api/core/configurations/?key__icontains=%ED%A0%80", "key__icontains"),  # a surrogate
        ("/api/core/configurations/?page=1&k%ffy=1", "k\\xffy"),
        ("/api/core/configurations/abc/?include_inactive=%c3", "include_inactive"),
        ("/audit?actor=%ff%fe", "actor"),
        ("/telemetry/anomalies?service=%ED%A0%80", "service"),
        ("/telemetry/series?name=cpu%e2%82", "name"),
        ("/telemetry/alerts?service=%ff", "service"),
        ("/telemetry/correlations?service=%ff", "service"),
        ("/telemetry/services?service=%ff", "service"),
    ],
)
def test_query_text_that_is_not_utf_8_is_422_naming_the_parameter(api, url, field) -> None:
    # Starlette would hand the route U+FFFD in place of the bad bytes, and it would be passed on.
    response = api.get(url)

    assert (response.status_code, response.json()) == (
        422,
        {
            "type": "about:blank",
            "title": "Unacceptable query value",
            "status": 422,
            "detail": f"Query parameter `{field}`: {NOT_UTF_8}",
            "instance": url.split("?")[0],
            "errors": [{"field": field, "message": NOT_UTF_8}],
        },
    )


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/audit?operation=create&operation=update", "operation"),
        ("/audit?actor=a&%61ctor=b", "actor"),  # the same name, percent-encoded
        ("/telemetry/anomalies?name=cpu&limit=5&name=mem", "name"),
        ("/telemetry/alerts?state=firing&state=pending", "state"),
        ("/telemetry/analysis?limit=1&limit=5000", "limit"),
        ("/api/core/configurations/?key=a&key=b", "key"),
    ],
)
def test_a_query_parameter_given_twice_is_422(api, path, field) -> None:
    response = api.get(path)

    assert (response.status_code, response.json()["errors"]) == (
        422,
        [{"field": field, "message": "Given more than once; each parameter is read once."}],
    )


def test_percent_encoded_utf_8_in_a_query_is_read_as_text(api) -> None:
    response = api.get("/api/core/configurations/?key__icontains=caf%C3%A9+%F0%9F%98%80")

    assert (response.status_code, response.json()["data"]) == (200, [])


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "1e999"])
def test_rest_number_filters_must_be_finite(api, text) -> None:
    # float("nan") and float("1e999") parse; the backend must never see them.
    response = api.get("/api/notification/alert-rules/", params={"threshold__gte": text})

    assert (response.status_code, response.json()["errors"]) == (
        422,
        [{"field": "threshold__gte", "message": "Must be a finite number."}],
    )


@pytest.mark.parametrize("entity_id", ["..", "a%2Fb", "a b", "a\x00", "x" * 101])
def test_only_well_formed_ids_reach_a_backend_url(api, entity_id) -> None:
    response = api.post(
        "/crud",
        json={"operation": "read", "entity_type": "core.configurations", "entity_id": entity_id},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "entity_id"
