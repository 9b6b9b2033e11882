"""The strict JSON reader on its own (service/strict_json.py): each rule at its edge."""

from __future__ import annotations

import pytest

from service.problems import Problem
from service.strict_json import JsonLimits, parse_strict_json, unsafe_text_error

LIMITS = JsonLimits(max_json_depth=3, max_string_length=4, max_list_length=2, max_object_keys=2)


def refusal(body: bytes) -> tuple[int, str, str]:
    with pytest.raises(Problem) as caught:
        parse_strict_json(body, LIMITS)
    problem = caught.value
    field = problem.errors[0]["field"] if problem.errors else ""
    return problem.status, field, problem.extra.get("limit", problem.title)


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (b"[[[]]]", [[[]]]),  # three levels: the limit
        (b'{"abcd": "wxyz"}', {"abcd": "wxyz"}),  # four characters in a key and a value
        (b"[1, 2]", [1, 2]),
        (b'{"a": 1, "b": 2}', {"a": 1, "b": 2}),
        (b"9223372036854775807", 2**63 - 1),
        (b"-9223372036854775808", -(2**63)),
        (b"1.7976931348623157e308", 1.7976931348623157e308),
        (b"1e-400", 0.0),  # underflow is a finite number
        (b'"\\t\\n\\r"', "\t\n\r"),
        ('"\u2028é€😀"'.encode(), "\u2028é€😀"),
        (b'  {"a": [true, null]}  ', {"a": [True, None]}),
    ],
)
def test_what_is_within_every_limit_is_read_as_json(body, value) -> None:
    assert parse_strict_json(body, LIMITS) == value


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[[[[]]]]", (422, "0.0.0", "request_max_json_depth")),
        (b"[" * 50_000 + b"]" * 50_000, (422, "body", "request_max_json_depth")),
        (b'"abcde"', (422, "body", "request_max_string_length")),
        (b'{"abcde": 1}', (422, "abcde", "request_max_string_length")),
        (b"[1, 2, 3]", (422, "body", "request_max_list_length")),
        (b'{"a": 1, "b": 2, "c": 3}', (422, "body", "request_max_object_keys")),
        (b'{"a": 1, "a": 1}', (422, "a", "Unacceptable JSON value")),
        (b"[NaN]", (422, "0", "Unacceptable JSON value")),
        (b"[1e309]", (422, "0", "Unacceptable JSON value")),
        (b"9223372036854775808", (422, "body", "Unacceptable JSON value")),
        (b"-9223372036854775809", (422, "body", "Unacceptable JSON value")),
        (b"1" * 4_301, (422, "body", "Unacceptable JSON value")),
        (b'"\\u0000"', (422, "body", "Unacceptable JSON value")),
        (b'{"\\u001f": 1}', (422, "\\u001f", "Unacceptable JSON value")),
        (b'{"a": {"\\ud800": 1}}', (422, "a.\\ud800", "Unacceptable JSON value")),
        (b'"\\udc00"', (422, "body", "Unacceptable JSON value")),
        (b'"\x01"', (400, "", "Malformed JSON")),
        (b"\xc0\xaf", (400, "", "Malformed JSON")),  # an overlong encoding of "/"
        (b"\xed\xa0\x80", (400, "", "Malformed JSON")),  # a surrogate encoded in UTF-8
        (b"", (400, "", "Malformed JSON")),
        (b"[1,]", (400, "", "Malformed JSON")),
    ],
)
def test_each_offence_is_refused_with_its_place_and_limit(body, expected) -> None:
    assert refusal(body) == expected


def test_the_first_offence_in_document_order_is_the_one_reported() -> None:
    body = b'{"a": [1, NaN], "b": "\\u0000"}'
    assert refusal(body) == (422, "a.1", "Unacceptable JSON value")


def test_a_limit_refusal_names_the_setting_and_its_value() -> None:
    with pytest.raises(Problem) as caught:
        parse_strict_json(b"[1, 2, 3]", LIMITS)

    assert caught.value.body() == {
        "type": "about:blank",
        "title": "Request limit exceeded",
        "status": 422,
        "detail": "body: More than 2 items. The limit is request_max_list_length = 2.",
        "errors": [{"field": "body", "message": "More than 2 items."}],
        "limit": "request_max_list_length",
        "limit_value": 2,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("plain\ttext\r\n", None),
        ("\x7f", "Holds the control character U+007F."),
        ("\x0b", "Holds the control character U+000B."),
        ("\x85", None),  # C1 controls are left to the field's own rules
        ("\ud83d", "Holds a lone surrogate, which is not valid Unicode."),
    ],
)
def test_unsafe_text(text, message) -> None:
    assert unsafe_text_error(text) == message


def test_a_key_that_cannot_be_shown_as_it_is_appears_escaped_in_the_problem() -> None:
    # A lone surrogate cannot be encoded in any answer, a control character would reach logs.
    with pytest.raises(Problem) as caught:
        parse_strict_json(b'{"ok\\u001b[2J": {"x\\udfffy": 1}}', JsonLimits())

    message = "Holds the control character U+001B."
    assert caught.value.body() == {
        "type": "about:blank",
        "title": "Unacceptable JSON value",
        "status": 422,
        "detail": f"ok\\u001b[2J: {message}",
        "errors": [{"field": "ok\\u001b[2J", "message": message}],
    }
