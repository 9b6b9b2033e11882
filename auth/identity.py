"""The authenticated caller: a name for the audit trail, how they proved it, and their scopes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .scopes import Scope, grants

# The actor of refusals whose caller could not be told, and the name the key in
# OBSERVER_ADMIN_API_KEY goes by. Neither can be a stored key's name.
ANONYMOUS = "anonymous"
ENV_ADMIN_NAME = "admin-env"
RESERVED_NAMES = frozenset({ANONYMOUS, ENV_ADMIN_NAME})


class IdentityKind(StrEnum):
    KEY = "key"  # an API key from the database
    JWT = "jwt"  # a bearer token signed by the configured issuer
    ADMIN_ENV = "admin-env"  # the key in OBSERVER_ADMIN_API_KEY


@dataclass(frozen=True, slots=True)
class Identity:
    name: str  # the key's name or the token's subject: the audit trail's actor
    kind: IdentityKind
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        return grants(self.scopes, scope)

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
