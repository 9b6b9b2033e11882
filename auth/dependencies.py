"""FastAPI dependencies for handlers that need to know who is calling.

Whether the caller may call a route at all is decided before routing, from the table in
policy.py (see middleware.py). Handlers only ask who is calling; the one finer decision, the
CRUD operation in a body, is crud/service.py's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .authenticator import REQUIRED
from .exceptions import Unauthenticated
from .identity import Identity


def identity_of(request: Request) -> Identity:
    identity = getattr(request.state, "identity", None)
    if identity is None:  # a public route, or an app built without the middleware
        raise Unauthenticated(REQUIRED, presented=False)
    return identity


CurrentIdentity = Annotated[Identity, Depends(identity_of)]
