"""The bounds on what a caller may send, from the settings, and the checks outside JSON bodies.

JSON bodies are bounded by `service.json_route` (size) and `service.strict_json` (shape); the
checks here cover what arrives in a query string: its encoding, page sizes, the values of
REST filters and the times compared with stored ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote_to_bytes

from fastapi import Depends
from starlette.requests import Request

from service.problems import Problem, limit_exceeded
from service.settings import Settings
from service.strict_json import JsonLimits, shown_key, unsafe_text_error


@dataclass(frozen=True)
class RequestLimits:
    max_body_bytes: int
    json: JsonLimits
    max_page_size: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestLimits:
        return cls(
            max_body_bytes=settings.request_max_body_bytes,
            json=JsonLimits(
                max_json_depth=settings.request_max_json_depth,
                max_string_length=settings.request_max_string_length,
                max_list_length=settings.request_max_list_length,
                max_object_keys=settings.request_max_object_keys,
            ),
            max_page_size=settings.request_max_page_size,
        )


def limits_of(request: Request) -> RequestLimits:
    """The app's limits, built once from its settings (or the defaults, for bare test apps)."""
    state = request.app.state
    limits = getattr(state, "request_limits", None)
    if limits is None:
        limits = RequestLimits.from_settings(getattr(state, "settings", None) or Settings())
        state.request_limits = limits
    return limits


def bounded_page_size(request: Request, page_size: int, *, given: bool) -> int:
    """The page size to use: a default above `request_max_page_size` shrinks to it, and a
    size the caller asked for above it is a 422 naming the limit."""
    limit = limits_of(request).max_page_size
    if page_size <= limit:
        return page_size
    if not given:
        return limit
    raise limit_exceeded("page_size", f"Must be at most {limit}.", "request_max_page_size", limit)


def check_query_text(raw: bytes) -> None:
    """A 422 naming the first query parameter whose name or value is not UTF-8 once
    percent-decoded, or that is given twice. Starlette decodes the query string with
    errors="replace", so `%ff` would reach a filter, a SQL condition or the backend as U+FFFD:
    only the raw bytes tell. And a route reads one value of each parameter, so a repeat would
    be dropped without a word."""
    if not raw:
        return
    encoded = b"%" in raw or not raw.isascii()
    names: set[bytes] = set()
    for pair in raw.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        if encoded:
            name, value = _percent_decoded(name), _percent_decoded(value)
            if not (_is_utf_8(name) and _is_utf_8(value)):
                shown = name.decode("utf-8", "backslashreplace")
                raise _unacceptable_query(shown, "Is not valid UTF-8 once percent-decoded.")
        else:
            name = name.replace(b"+", b" ")  # as a form decodes it
        if name in names:
            shown = name.decode("utf-8", "backslashreplace")
            raise _unacceptable_query(shown, "Given more than once; each parameter is read once.")
        names.add(name)


async def check_query_encoding(request: Request) -> None:
    """`check_query_text` as a dependency (`QUERY_TEXT`), for routes whose router does not use
    `CheckedRoute` (which checks every request's query itself); async so that FastAPI does
    not send it to a thread."""
    check_query_text(request.scope.get("query_string", b""))


# `dependencies=` of the routes that read text from the query string.
QUERY_TEXT = [Depends(check_query_encoding)]
# Years every supported database's time column holds (MariaDB's DATETIME starts at 1000).
STORED_YEARS = range(1000, 10_000)


def stored_time(field: str, moment: datetime | float | None) -> datetime | None:
    """A query's time (a datetime, or Unix seconds) as an aware UTC datetime that every
    database can compare with its stored times, or a 422 naming the parameter. A naive time is
    UTC, as the stored ones are."""
    if moment is None:
        return None
    try:
        if isinstance(moment, datetime):
            utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
        else:
            utc = datetime.fromtimestamp(moment, UTC)
    except (OverflowError, OSError, ValueError):
        utc = None
    if utc is None or utc.year not in STORED_YEARS:
        raise Problem(
            422,
            f"`{field}` is outside the times the service stores.",
            errors=[{"field": field, "message": "must be between the years 1000 and 9999 UTC"}],
        )
    return utc


def check_query_values(request: Request) -> None:
    """Query values are passed on to the backend: the same text rules as JSON strings."""
    max_length = limits_of(request).json.max_string_length
    for name, value in request.query_params.multi_items():
        if len(value) > max_length or len(name) > max_length:
            message = f"Longer than {max_length} characters."
            setting = "request_max_string_length"
            raise limit_exceeded(shown_key(name), message, setting, max_length)
        if message := unsafe_text_error(name) or unsafe_text_error(value):
            raise _unacceptable_query(name, message)


def _percent_decoded(encoded: bytes) -> bytes:
    # As a form decodes it (urllib's parse_qsl, which Starlette uses): `+` is a space.
    return unquote_to_bytes(encoded.replace(b"+", b" "))


def _is_utf_8(text: bytes) -> bool:
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _unacceptable_query(name: str, message: str) -> Problem:
    field = shown_key(name)
    return Problem(
        422,
        f"Query parameter `{field}`: {message}",
        title="Unacceptable query value",
        errors=[{"field": field, "message": message}],
    )
