"""The authenticated caller: a name for the audit trail, how they proved it, and their scopes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .scopes import Scope, grants

# The actor of refusals whose caller could not be told, the name the key in
# OBSERVER_ADMIN_API_KEY goes by, and the actor of `python -m auth`. None can be a key's name.
ANONYMOUS = "anonymous"
ENV_ADMIN_NAME = "admin-env"
COMMAND_LINE = "command-line"
RESERVED_NAMES = frozenset({ANONYMOUS, ENV_ADMIN_NAME, COMMAND_LINE})
JWT_ACTOR_PREFIX = "jwt:"


class IdentityKind(StrEnum):
    KEY = "key"  # an API key from the database
    JWT = "jwt"  # a bearer token signed by the configured issuer
    ADMIN_ENV = "admin-env"  # the key in OBSERVER_ADMIN_API_KEY


@dataclass(frozen=True, slots=True)
class Identity:
    name: str  # the key's name or the token's subject
    kind: IdentityKind
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        return grants(self.scopes, scope)

    @property
    def actor(self) -> str:
        """Who the audit trail names. A token's subject is its issuer's to choose, so it is
        marked: `jwt:admin` can be no key's name (names hold no ':') and no reserved one."""
        return f"{JWT_ACTOR_PREFIX}{self.name}" if self.kind is IdentityKind.JWT else self.name

    @property
    def principal(self) -> str:
        """Unique across kinds: a key and a token subject may share a name."""
        return f"{self.kind.value}:{self.name}"

    def public(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "scopes": sorted(scope.value for scope in self.scopes),
        }
