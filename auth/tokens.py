"""JWT bearer tokens (RFC 7519) checked with PyJWT: signature, expiry, issuer and audience.

The subject, as `jwt:<subject>`, becomes the audit trail's actor; the scope claim (a
space-separated string as in OAuth 2.0, or a list) becomes the scopes, of which only ours count.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from service.settings import Settings

from .exceptions import Unauthenticated
from .identity import JWT_ACTOR_PREFIX, Identity, IdentityKind
from .scopes import known_scopes

# The audit trail's actor column holds 200 characters, `jwt:` and the subject.
MAX_SUBJECT_LENGTH = 200 - len(JWT_ACTOR_PREFIX)
# Control and format characters (bidi overrides among them), surrogates and line separators:
# each could make one actor read as another in a log or a table of the trail.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

# Each PyJWT refusal, in words a caller can act on; anything else is "not valid".
_REASONS: list[tuple[type[jwt.PyJWTError], str]] = [
    (jwt.ExpiredSignatureError, "The bearer token has expired."),
    (jwt.ImmatureSignatureError, "The bearer token is not valid yet."),
    (jwt.InvalidAudienceError, "The bearer token is for another audience."),
    (jwt.InvalidIssuerError, "The bearer token is from another issuer."),
    (jwt.MissingRequiredClaimError, "The bearer token lacks a required claim."),
    (jwt.InvalidSignatureError, "The bearer token's signature does not verify."),
]


class JwtVerifier:
    def __init__(
        self,
        key: Any,
        algorithms: list[str],
        *,
        issuer: str,
        audience: str,
        leeway: float,
        scope_claim: str,
    ) -> None:
        self._key = key
        self._algorithms = algorithms
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._scope_claim = scope_claim

    @classmethod
    def from_settings(cls, settings: Settings) -> JwtVerifier | None:
        """None when JWT is not configured. A bad public key file stops the start."""
        if not settings.jwt_enabled:
            return None
        key, default_algorithm = _verification_key(settings)
        return cls(
            key,
            settings.auth_jwt_algorithms or [default_algorithm],
            issuer=settings.auth_jwt_issuer,
            audience=settings.auth_jwt_audience,
            leeway=settings.auth_jwt_leeway_seconds,
            scope_claim=settings.auth_jwt_scope_claim,
        )

    def verify(self, token: str) -> Identity:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(_reason(exc)) from exc

        subject = _checked_subject(claims["sub"])
        return Identity(subject, IdentityKind.JWT, known_scopes(self._scope_names(claims)))

    def _scope_names(self, claims: dict[str, Any]) -> list[str]:
        value = claims.get(self._scope_claim)
        if isinstance(value, str):
            return value.split()
        if isinstance(value, list):
            return [item for item in value if isinstance(item, str)]
        return []


def _checked_subject(subject: Any) -> str:
    """The subject, if it can stand unambiguously as the audit trail's actor."""
    if not isinstance(subject, str) or not subject:
        raise Unauthenticated("The bearer token's subject is not a name.")
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise Unauthenticated(
            f"The bearer token's subject is longer than {MAX_SUBJECT_LENGTH} characters."
        )
    if any(unicodedata.category(char) in _UNSAFE_CATEGORIES for char in subject):
        raise Unauthenticated("The bearer token's subject holds a control character.")
    return subject


def _verification_key(settings: Settings) -> tuple[Any, str]:
    secret = settings.auth_jwt_secret.get_secret_value()
    if secret:
        return secret, "HS256"
    assert settings.auth_jwt_public_key_file is not None  # jwt_enabled says one is set
    path = settings.auth_jwt_public_key_file
    try:
        key = load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"OBSERVER_AUTH_JWT_PUBLIC_KEY_FILE: cannot read {path}: {exc}") from exc
    if isinstance(key, rsa.RSAPublicKey):
        return key, "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key, "ES256"
    raise ValueError(f"OBSERVER_AUTH_JWT_PUBLIC_KEY_FILE: {path} is neither an RSA nor an EC key")


def _reason(exc: jwt.PyJWTError) -> str:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "The bearer token is not valid."
