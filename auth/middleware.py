"""ASGI middleware in front of the router: every request is admitted by the Gatekeeper first.

It runs before routing, so a refused request's body is never read and no handler runs. The
admitted identity is left in `request.state.identity` for the handlers (see dependencies.py).
"""

from __future__ import annotations

from starlette.requests import Request as StarletteRequest
from starlette.types import ASGIApp, Receive, Scope, Send

from service.problems import Problem, problem_response
from service.request_context import caller_bearer_var

from .authenticator import credential_of
from .gatekeeper import Gatekeeper, Refused, Request
from .identity import Identity, IdentityKind

STARTING = Problem(503, "The service is starting.", headers={"Retry-After": "1"})


class AuthenticationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        gatekeeper: Gatekeeper | None = getattr(scope["app"].state, "gatekeeper", None)
        if gatekeeper is None:  # the lifespan has not started it: admit no one
            await problem_response(STARTING, StarletteRequest(scope))(scope, receive, send)
            return

        client = scope.get("client")
        address = client[0] if client else "unknown"
        request = Request(scope["method"], scope["path"], scope["headers"], address)
        try:
            identity = await gatekeeper.admit(request)
        except Refused as refused:
            if refused.rule is not None:
                scope["route"] = refused.rule.route  # so request metrics name the template
            response = problem_response(refused.problem, StarletteRequest(scope))
            await response(scope, receive, send)
            return

        scope.setdefault("state", {})["identity"] = identity
        await self._call_as(identity, scope, receive, send)

    async def _call_as(
        self, identity: Identity | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if identity is None or identity.kind is not IdentityKind.JWT:
            await self.app(scope, receive, send)
            return
        # OBSERVER_BACKEND_FORWARD_BEARER passes the caller's token on to the backend: a JWT
        # may go; one of our API keys never leaves this service, so only a JWT is set here.
        credential = credential_of(scope["headers"])
        assert credential is not None  # the gatekeeper admitted it
        forwarded = caller_bearer_var.set(credential.token)
        try:
            await self.app(scope, receive, send)
        finally:
            caller_bearer_var.reset(forwarded)
