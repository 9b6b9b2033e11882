"""Turns the credential a request carries into an Identity, or refuses it.

Accepted: `X-API-Key: <key>`, or `Authorization: Bearer <token>` where the token is the key in
OBSERVER_ADMIN_API_KEY, one of our API keys, or (when configured) a JWT. The cheap checks come
first and need no I/O; only a key this instance has not verified lately is read from the
database, so the caller can refuse that read to an address that keeps failing.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from .exceptions import Unauthenticated
from .identity import ENV_ADMIN_NAME, Identity, IdentityKind
from .key_cache import INVALID_KEY, VerifiedKeys
from .keys import key_id_of
from .scopes import Scope
from .tokens import JwtVerifier

REQUIRED = "A credential is required: Authorization: Bearer <key or token>, or X-API-Key: <key>."


@dataclass(frozen=True, slots=True)
class Credential:
    token: str
    bearer: bool  # from Authorization (a JWT is possible) rather than X-API-Key


def credential_of(headers: list[tuple[bytes, bytes]]) -> Credential | None:
    """The request's credential from its raw ASGI headers; None when it sends none."""
    authorization = api_key = None
    for name, value in headers:
        if name == b"x-api-key":
            api_key = value.decode("latin-1").strip()
        elif name == b"authorization":
            authorization = value.decode("latin-1").strip()
    if api_key:
        return Credential(api_key, bearer=False)
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Only Bearer credentials are accepted in Authorization.")
    return Credential(token.strip(), bearer=True)


class Authenticator:
    def __init__(self, keys: VerifiedKeys, admin_key: str, jwt: JwtVerifier | None) -> None:
        self.keys = keys
        self._jwt = jwt
        # Compared as digests: equal lengths, so the comparison's time tells nothing.
        self._admin_digest = _digest(admin_key) if admin_key else None
        self._admin = Identity(ENV_ADMIN_NAME, IdentityKind.ADMIN_ENV, frozenset({Scope.ADMIN}))

    def without_io(self, credential: Credential | None) -> Identity | None:
        """The identity when no database read is needed; None: call `with_database`."""
        if credential is None:
            raise Unauthenticated(REQUIRED, presented=False)
        token = credential.token
        if self._admin_digest and hmac.compare_digest(_digest(token), self._admin_digest):
            return self._admin
        if key_id_of(token) is not None:
            return self.keys.cached(token)
        if credential.bearer and self._jwt is not None:
            return self._jwt.verify(token)
        raise Unauthenticated(INVALID_KEY)

    async def with_database(self, credential: Credential) -> Identity:
        return await self.keys.verify(credential.token)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()
