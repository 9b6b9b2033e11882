"""Reading `If-Match` and the boolean query switches of a request."""

from __future__ import annotations

import re

from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.request import Request

# A version, quoted as an entity tag or bare; `W/` weak tags are accepted as the same number.
IF_MATCH = re.compile(r'^\s*(?:W/)?(?:"(\d+)"|(\d+))\s*$')


def expected_version(request: Request) -> int | None:
    """The version `If-Match` requires, or None when the write is unconditional."""
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() == "*":
        return None

    match = IF_MATCH.match(raw)
    if match is None:
        raise ParseError('If-Match must be one version, like "3".')
    return int(match.group(1) or match.group(2))


def query_switch(request: Request, name: str) -> bool:
    """A `true`/`false` query parameter, false when absent; anything else is a 400."""
    raw = request.query_params.get(name)
    if raw is None:
        return False

    word = raw.lower()
    if word in {"true", "1"}:
        return True
    if word in {"false", "0"}:
        return False
    raise ValidationError({name: ["Must be true or false."]})
