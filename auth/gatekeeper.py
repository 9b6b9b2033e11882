"""The decision for one request: which route it is for, who sends it, whether they may."""

from __future__ import annotations

from dataclasses import dataclass

from service.problems import Problem

from .authenticator import Authenticator, credential_of
from .exceptions import Forbidden, Unauthenticated
from .identity import Identity
from .refusals import Attempt, Refusals
from .route_table import UNMATCHED, RouteRule, RouteTable


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: list[tuple[bytes, bytes]]
    address: str


class Refused(Exception):
    """The answer a refused request gets, and the route it was for (for request metrics)."""

    def __init__(self, problem: Problem, rule: RouteRule | None) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.rule = rule


class Gatekeeper:
    def __init__(
        self, routes: RouteTable, authenticator: Authenticator, refusals: Refusals
    ) -> None:
        self.routes = routes
        self.authenticator = authenticator
        self.refusals = refusals

    async def admit(self, request: Request) -> Identity | None:
        """The caller's identity (None on a public route); raises Refused otherwise.

        A path no route serves still needs a credential: without one it is a 401, not a 404,
        so the routes cannot be mapped anonymously.
        """
        rule = self.routes.match(request.method, request.path)
        if rule is not None and rule.needs is None:
            return None
        try:
            identity = self.authenticator.authenticate(credential_of(request.headers))
            if rule is not None and rule.needs and not any(map(identity.allows, rule.needs)):
                raise Forbidden(identity.actor, rule.needs)
        except (Unauthenticated, Forbidden) as refusal:
            attempt = Attempt(rule.label if rule else UNMATCHED, request.address, _agent(request))
            raise Refused(await self.refusals.refused(refusal, attempt), rule) from refusal
        except Problem as problem:  # 503: the keys could not be read lately
            raise Refused(problem, rule) from problem
        return identity


def _agent(request: Request) -> str | None:
    for name, value in request.headers:
        if name == b"user-agent":
            return value.decode("latin-1")
    return None
