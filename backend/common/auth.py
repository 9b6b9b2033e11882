"""One shared service token guards every route except health."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

KEYWORD = "Token"


@dataclass(frozen=True)
class ServiceCaller:
    """The one identity a valid token stands for; the backend has no user accounts."""

    name: str = "service"
    is_authenticated: bool = True


class ServiceTokenAuthentication(BaseAuthentication):
    """Accept `Authorization: Token <token>` when it equals the configured service token."""

    def authenticate(self, request: Request) -> tuple[ServiceCaller, str] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].decode("latin-1").lower() != KEYWORD.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization must be 'Token <token>'.")

        presented = parts[1]
        expected = settings.OBSERVER_BACKEND_TOKEN.encode()
        # Constant time, so response timing does not reveal how much of a guess matched.
        if not hmac.compare_digest(presented, expected):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return ServiceCaller(), presented.decode("latin-1")

    def authenticate_header(self, request: Request) -> str:
        # A challenge makes DRF answer 401 rather than 403 when the token is missing.
        return KEYWORD


class HasServiceToken(BasePermission):
    """Allow only requests that presented the service token."""

    def has_permission(self, request: Request, view: object) -> bool:
        return request.auth is not None
