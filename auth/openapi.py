"""The security schemes and each operation's scopes in the OpenAPI document, from policy.py,
so that the docs' Authorize button works and clients see what each route needs. (The 401,
403 and 429 answers themselves are documented with the other problems, in
service/openapi_problems.py.)"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from .policy import Requirement

SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (oek_...) or, where configured, a JWT.",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def install_security_schema(app: FastAPI, scopes: dict[str, Requirement]) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()  # FastAPI caches it; a regenerated one lacks our schemes
        components = schema.setdefault("components", {})
        if "securitySchemes" not in components:
            components["securitySchemes"] = SCHEMES
            _mark_operations(schema, scopes)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _mark_operations(schema: dict[str, Any], scopes: dict[str, Requirement]) -> None:
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            needs = scopes.get(f"{method.upper()} {path}")
            if needs is None:
                operation["security"] = []
                continue
            # OpenAPI 3.1 lets any scheme list the roles it needs: here, our scopes.
            names = sorted(scope.value for scope in needs)
            operation["security"] = [{"bearer": names}, {"apiKey": names}]
