"""The refusals of authentication and key management, each a problem-details answer.

Problem (service.problems)
├── Unauthenticated   401  no credential, or one that is not valid (WWW-Authenticate)
├── Forbidden         403  a valid credential without the scope the route needs
├── TooManyFailures   429  this address failed too often; Retry-After
├── CannotVerify      503  the key store cannot be read now; Retry-After
├── KeyNameTaken      409  a key of that name exists (revoked ones too)
└── UnknownKey        404  no key of that name
"""

from __future__ import annotations

from collections.abc import Iterable

from service.problems import Problem

from .identity import ANONYMOUS
from .scopes import Scope

REALM = 'Bearer realm="observer-eye"'


class Unauthenticated(Problem):
    def __init__(self, detail: str, *, actor: str = ANONYMOUS, presented: bool = True) -> None:
        # RFC 6750 section 3: no error code when no credential was sent at all.
        challenge = f'{REALM}, error="invalid_token"' if presented else REALM
        super().__init__(401, detail, headers={"WWW-Authenticate": challenge})
        self.actor = actor  # a revoked or mistyped key's name, when the key id is ours


class Forbidden(Problem):
    def __init__(self, actor: str, needed: Iterable[Scope]) -> None:
        names = sorted(scope.value for scope in needed)
        challenge = f'{REALM}, error="insufficient_scope", scope="{" ".join(names)}"'
        super().__init__(
            403,
            f"This credential lacks the scope this needs: {' or '.join(names)}.",
            headers={"WWW-Authenticate": challenge},
            extra={"required_scopes": names},
        )
        self.actor = actor


class TooManyFailures(Problem):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429,
            "Too many failed attempts from this address; retry later.",
            headers={"Retry-After": str(retry_after)},
        )


class CannotVerify(Problem):
    def __init__(self) -> None:
        super().__init__(
            503,
            "The API key store cannot be read now, so the key cannot be checked.",
            headers={"Retry-After": "5"},
        )


class KeyNameTaken(Problem):
    def __init__(self, name: str) -> None:
        super().__init__(409, f"A key named {name!r} exists already; names are never reused.")


class UnknownKey(Problem):
    def __init__(self, name: str) -> None:
        super().__init__(404, f"No key is named {name!r}.")
