"""Wiring authentication into the app: `install_authentication` when it is built,
`start_authentication` and `stop_authentication` in its lifespan."""

from __future__ import annotations

from fastapi import FastAPI

from crud.audit import AuditTrail
from django_integration.connection import Database
from service.settings import Settings

from .authenticator import Authenticator
from .bootstrap import ensure_first_admin_key
from .gatekeeper import Gatekeeper
from .key_cache import KeyCache
from .keys import KeyStore
from .middleware import AuthenticationMiddleware
from .openapi import install_security_schema
from .policy import route_scopes
from .refusals import Refusals
from .route_table import RouteTable
from .tokens import JwtVerifier


def install_authentication(app: FastAPI, settings: Settings) -> None:
    """Call before any other `add_middleware`: the middleware added first runs innermost,
    next to the router, so request logs and metrics see its refusals."""
    app.add_middleware(AuthenticationMiddleware)
    install_security_schema(app, route_scopes(metrics_require_key=settings.metrics_require_key))


async def start_authentication(
    app: FastAPI, settings: Settings, database: Database, audit: AuditTrail
) -> None:
    """After the migrations: the key store, the first admin key if needed, every key in
    memory, the gatekeeper."""
    scopes = route_scopes(metrics_require_key=settings.metrics_require_key)
    routes = RouteTable.of(app, scopes)  # refuses to start while a route has no scope
    store = KeyStore(database)
    await ensure_first_admin_key(store, settings)

    keys = KeyCache(store, settings.auth_key_recheck_seconds)
    await keys.load()
    admin_key = settings.admin_api_key.get_secret_value()
    authenticator = Authenticator(keys, admin_key, JwtVerifier.from_settings(settings))
    refusals = Refusals(audit, settings.auth_failure_rate_limit)
    app.state.key_store = store
    app.state.gatekeeper = Gatekeeper(routes, authenticator, refusals)
    keys.start()


async def stop_authentication(app: FastAPI) -> None:
    gatekeeper: Gatekeeper | None = getattr(app.state, "gatekeeper", None)
    if gatekeeper is not None:
        await gatekeeper.authenticator.keys.stop()
