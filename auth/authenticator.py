"""Turns the credential a request carries into an Identity, or refuses it.

Accepted: `X-API-Key: <key>`, or `Authorization: Bearer <token>` where the token is the key in
OBSERVER_ADMIN_API_KEY, one of our API keys, or (when configured) a JWT; exactly one of those
headers. None of the checks needs I/O: every API key is held in memory (key_cache.py).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from .exceptions import Unauthenticated
from .identity import ENV_ADMIN_NAME, Identity, IdentityKind
from .key_cache import INVALID_KEY, KeyCache
from .keys import key_id_of
from .scopes import Scope
from .tokens import JwtVerifier

REQUIRED = "A credential is required: Authorization: Bearer <key or token>, or X-API-Key: <key>."
CREDENTIAL_HEADERS = {b"authorization": "Authorization", b"x-api-key": "X-API-Key"}


@dataclass(frozen=True, slots=True)
class Credential:
    token: str
    bearer: bool  # from Authorization (a JWT is possible) rather than X-API-Key


def credential_of(headers: list[tuple[bytes, bytes]]) -> Credential | None:
    """The request's credential from its raw ASGI headers; None when it sends none.

    More than one credential header is refused: were the last one to win, a proxy that checks
    the first could be shown one identity while this service acts on another.
    """
    sent = [
        (name, text)
        for name, value in headers
        if name in CREDENTIAL_HEADERS and (text := value.decode("latin-1").strip())
    ]
    if not sent:
        return None
    if len(sent) > 1:
        raise Unauthenticated(f"Send one credential, not several: {_described(sent)}.")
    [(name, text)] = sent
    if name == b"x-api-key":
        return Credential(text, bearer=False)
    scheme, _, token = text.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Only Bearer credentials are accepted in Authorization.")
    return Credential(token.strip(), bearer=True)


class Authenticator:
    def __init__(self, keys: KeyCache, admin_key: str, jwt: JwtVerifier | None) -> None:
        self.keys = keys
        self._jwt = jwt
        # Compared as digests: equal lengths, so the comparison's time tells nothing.
        self._admin_digest = _digest(admin_key) if admin_key else None
        self._admin = Identity(ENV_ADMIN_NAME, IdentityKind.ADMIN_ENV, frozenset({Scope.ADMIN}))

    def authenticate(self, credential: Credential | None) -> Identity:
        """The credential's identity; raises Unauthenticated when there is none or it is bad."""
        if credential is None:
            raise Unauthenticated(REQUIRED, presented=False)
        token = credential.token
        if self._admin_digest and hmac.compare_digest(_digest(token), self._admin_digest):
            return self._admin
        if key_id_of(token) is not None:
            return self.keys.verify(token)
        if credential.bearer and self._jwt is not None:
            return self._jwt.verify(token)
        raise Unauthenticated(INVALID_KEY)


def _described(sent: list[tuple[bytes, str]]) -> str:
    names = [CREDENTIAL_HEADERS[name] for name, _ in sent]
    if len(set(names)) == 1:
        return f"{len(names)} {names[0]} headers"
    return " and ".join(sorted(set(names))) + " headers"


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()
