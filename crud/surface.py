"""What the `/crud` and REST surfaces share: the caller, the answer, idempotency."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from auth.dependencies import identity_of
from service.problems import Problem, problem_response
from service.request_context import current_request_id

from .idempotency import IdempotencyStore, StoredAnswer, checked_key, request_fingerprint
from .service import Caller, CrudResult


def caller_of(request: Request) -> Caller:
    """The authenticated caller; what the request says about itself (X-Actor) counts for nothing."""
    identity = identity_of(request)
    return Caller(
        actor=identity.actor,
        request_id=current_request_id(),
        client_address=request.client.host if request.client else None,
        user_agent=request.headers.get("User-Agent"),
        scopes=identity.scopes,
        principal=identity.principal,
    )


def respond(result: CrudResult) -> Response:
    if result.body is None:
        return Response(status_code=result.status, headers=result.headers)
    return JSONResponse(result.body, status_code=result.status, headers=result.headers)


async def idempotent(
    request: Request, body: Any, run: Callable[[], Awaitable[tuple[int, Any, dict[str, str]]]]
) -> Response:
    """Run a POST once per Idempotency-Key; a retry gets the first answer back."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return _answer(*await run())

    store: IdempotencyStore = request.app.state.idempotency
    key = checked_key(key)
    # The caller is part of the request: another caller reusing the key is refused (422),
    # never handed this caller's answer.
    caller = identity_of(request).principal
    fingerprint = request_fingerprint(request.method, request.url.path, [caller, body])
    stored = await store.claim(key, fingerprint)
    if stored is not None:
        response = _answer(stored.status, stored.body, stored.headers)
        response.headers["Idempotent-Replayed"] = "true"
        return response

    try:
        status, payload, headers = await run()
    except Problem as problem:
        if problem.status >= 500:  # no definite answer: let a retry try again
            await store.release(key)
            raise
        await store.complete(key, StoredAnswer(problem.status, problem.body(), problem.headers))
        raise
    except BaseException:
        await store.release(key)
        raise
    await store.complete(key, StoredAnswer(status, payload, headers))
    return _answer(status, payload, headers)


def _answer(status: int, body: Any, headers: dict[str, str]) -> Response:
    if status >= 400 and isinstance(body, dict) and "title" in body:
        extra = {
            key: value
            for key, value in body.items()
            if key not in ("type", "title", "status", "detail", "errors", "instance")
        }
        problem = Problem(
            status,
            body.get("detail", ""),
            title=body["title"],
            errors=body.get("errors"),
            headers=headers,
            extra=extra,
        )
        return problem_response(problem)
    if body is None:
        return Response(status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)
