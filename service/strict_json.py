"""The one strict JSON reader for request bodies: CRUD, bulk, REST and threshold rules.

Python's `json` is lenient where an API must not be: it takes NaN and Infinity, lets the last of
two equal keys win silently (another parser may keep the first), reads 1e400 as infinity, raises
a bare ValueError past 4,300 digits and lets escaped NUL bytes through. Here each is a 4xx:

    400  not JSON text: invalid UTF-8, a syntax error, a raw control character
    422  JSON we do not take: NaN or Infinity, a number out of range, a duplicate key, an
         escaped C0 control (other than tab, line feed and carriage return), DEL or lone
         surrogate, or a limit passed: depth, string length, list length, keys per object

A 422 names the place (`errors[0].field`, a dotted path from the body's root) and, for a limit,
the setting and its value (`limit`, `limit_value`). The parser's hooks only mark what they
find; one pass over the parsed tree then reports the first offence with its path.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from service.problems import Problem, limit_exceeded

# The backend's integers are 64-bit; a larger one would fail there, not here.
MIN_INTEGER, MAX_INTEGER = -(2**63), 2**63 - 1
_MAX_INTEGER_DIGITS = len(str(MAX_INTEGER))
# C0 controls but tab, line feed and carriage return; DEL; lone surrogates, which no answer could
# encode as UTF-8. NUL alone breaks PostgreSQL text columns and C string handling downstream.
UNSAFE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
OUT_OF_RANGE = "The number is outside the 64-bit integer range."
_SHOWN_KEY_LENGTH = 40  # a key echoed in a path is cut to this


@dataclass(frozen=True)
class JsonLimits:
    """Bounds on a parsed body; each field is the setting `request_<name>`."""

    max_json_depth: int = 32
    max_string_length: int = 10_000
    max_list_length: int = 1_000
    max_object_keys: int = 256


class _Unacceptable:
    """Put in the tree by a parser hook in place of a value we refuse; reported with its path."""

    def __init__(self, message: str) -> None:
        self.message = message


class _DuplicateKeys(dict[str, Any]):
    def __init__(self, pairs: list[tuple[str, Any]], key: str) -> None:
        super().__init__(pairs)
        self.duplicate = key


def parse_strict_json(body: bytes, limits: JsonLimits) -> Any:
    """The parsed body, or a Problem (400 or 422) saying what is wrong and where."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise malformed(f"it is not valid UTF-8 (byte {exc.start})") from exc

    try:
        value = json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_constant,
            parse_int=_integer,
            parse_float=_float,
        )
    except json.JSONDecodeError as exc:
        raise malformed(f"{exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    except RecursionError as exc:
        # Python's parser gives up near 1,000 levels, far past any allowed depth.
        raise _limit((), "max_json_depth", limits.max_json_depth) from exc

    _check_tree(value, limits)
    return value


def unsafe_text_error(text: str) -> str | None:
    """Why a string cannot be stored or passed on, or None; for query values too."""
    found = UNSAFE_TEXT.search(text)
    if found is None:
        return None
    character = found.group()
    if "\ud800" <= character <= "\udfff":
        return "Holds a lone surrogate, which is not valid Unicode."
    return f"Holds the control character U+{ord(character):04X}."


def malformed(reason: str) -> Problem:
    return Problem(400, f"The request body is not valid JSON: {reason}.", title="Malformed JSON")


# --- parser hooks: mark, never raise, so the walk can say where -------------------------


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) == len(pairs):
        return value
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return _DuplicateKeys(pairs, key)
        seen.add(key)
    raise AssertionError("a shorter dict than its pairs has a repeated key")  # pragma: no cover


def _constant(name: str) -> _Unacceptable:
    return _Unacceptable(f"{name} is not a number JSON allows; send a finite number.")


def _integer(digits: str) -> int | _Unacceptable:
    # Checked on the digits: Python's int() refuses past 4,300 of them with a bare ValueError.
    if len(digits.lstrip("-")) > _MAX_INTEGER_DIGITS:
        return _Unacceptable(OUT_OF_RANGE)
    number = int(digits)
    return number if MIN_INTEGER <= number <= MAX_INTEGER else _Unacceptable(OUT_OF_RANGE)


def _float(text: str) -> float | _Unacceptable:
    number = float(text)
    if not math.isfinite(number):
        return _Unacceptable("The number is too large for a 64-bit float.")
    return number


# --- the walk ------------------------------------------------------------------------------


def _check_tree(root: Any, limits: JsonLimits) -> None:
    """Depth first, in document order, without recursion: report the first offence."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(root, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            _check_text(value, path, limits)
        elif isinstance(value, dict):
            _check_container(path, limits)
            _check_object(value, path, limits)
            stack.extend((value[key], (*path, key)) for key in reversed(list(value)))
        elif isinstance(value, list):
            _check_container(path, limits)
            if len(value) > limits.max_list_length:
                raise _limit(path, "max_list_length", limits.max_list_length)
            stack.extend((value[index], (*path, index)) for index in reversed(range(len(value))))
        elif isinstance(value, _Unacceptable):
            raise _unacceptable(path, value.message)


def _check_container(path: tuple[str | int, ...], limits: JsonLimits) -> None:
    # The root container is level 1: a value at `path` sits one level below its last key.
    if len(path) + 1 > limits.max_json_depth:
        raise _limit(path, "max_json_depth", limits.max_json_depth)


def _check_object(value: dict[str, Any], path: tuple[str | int, ...], limits: JsonLimits) -> None:
    if isinstance(value, _DuplicateKeys):
        raise _unacceptable((*path, value.duplicate), "The key appears more than once.")
    if len(value) > limits.max_object_keys:
        raise _limit(path, "max_object_keys", limits.max_object_keys)
    for key in value:
        _check_text(key, (*path, key), limits)


def _check_text(text: str, path: tuple[str | int, ...], limits: JsonLimits) -> None:
    if len(text) > limits.max_string_length:
        raise _limit(path, "max_string_length", limits.max_string_length)
    if message := unsafe_text_error(text):
        raise _unacceptable(path, message)


# --- the problems ----------------------------------------------------------------------------

_LIMIT_MESSAGES = {
    "max_json_depth": "Nested deeper than {} levels.",
    "max_string_length": "Longer than {} characters.",
    "max_list_length": "More than {} items.",
    "max_object_keys": "More than {} keys.",
}


def _limit(path: tuple[str | int, ...], name: str, value: int) -> Problem:
    message = _LIMIT_MESSAGES[name].format(value)
    return limit_exceeded(dotted(path), message, f"request_{name}", value)


def _unacceptable(path: tuple[str | int, ...], message: str) -> Problem:
    field = dotted(path)
    return Problem(
        422,
        f"{field}: {message}",
        title="Unacceptable JSON value",
        errors=[{"field": field, "message": message}],
    )


def dotted(path: tuple[str | int, ...]) -> str:
    """`("items", 3, "data")` as `items.3.data`; the root is `body`; long keys are cut, and
    unsafe characters in them are shown as JSON escapes."""
    if not path:
        return "body"
    return ".".join(shown_key(str(part)) for part in path)


def shown_key(key: str) -> str:
    """A key as a problem may echo it: cut when long, unsafe characters as JSON escapes."""
    # The offending key is echoed in the answer: a lone surrogate in it cannot be encoded as
    # UTF-8 at all, and a control character could garble a terminal or a log that shows it.
    shown = key if len(key) <= _SHOWN_KEY_LENGTH else key[:_SHOWN_KEY_LENGTH] + "…"
    return UNSAFE_TEXT.sub(_json_escape, shown)


def _json_escape(found: re.Match[str]) -> str:
    return f"\\u{ord(found.group()):04x}"
