"""Observer Eye middleware: `create_app()` builds the service; `python main.py` serves it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from crud.audit import AuditTrail
from crud.registry import EntityRegistry
from crud.routes import router as crud_router
from crud.service import CrudService
from django_integration.api_client import BackendClient
from django_integration.backend_sources import DjangoBackendSources
from django_integration.connection import Database
from django_integration.embedded import EMBEDDED_BASE_URL, embedded_transport
from django_integration.exceptions import BackendError
from service import health
from service.logging import configure_logging
from service.problems import install_problem_handlers
from service.request_log import RequestLogMiddleware
from service.settings import Settings
from telemetry.pipeline import Pipeline
from telemetry.routes import router as telemetry_router

logger = logging.getLogger("observer")


async def _connect_backend(settings: Settings) -> BackendClient:
    if settings.embedded_backend:
        transport, token = await embedded_transport(settings)
        logger.info("no OBSERVER_BACKEND_URL set: using the embedded reference backend")
        return BackendClient(settings, base_url=EMBEDDED_BASE_URL, token=token, transport=transport)
    return BackendClient(settings, base_url=settings.backend_url, token=settings.backend_token)


async def _discover(registry: EntityRegistry) -> None:
    # The service must start and answer probes while the backend is down;
    # the registry fills in on the first CRUD call once it is back.
    try:
        await registry.refresh()
    except BackendError as error:
        logger.warning("backend discovery failed, will retry on demand: %s", error.detail)
        return
    if missing := registry.missing_apps():
        logger.warning("the backend does not serve these expected apps: %s", ", ".join(missing))


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    database = Database(
        settings.effective_database_url, health_timeout=settings.database_health_timeout
    )
    await database.create_tables()
    client = await _connect_backend(settings)
    registry = EntityRegistry(client)
    audit = AuditTrail(database)
    pipeline = Pipeline(settings, sources=DjangoBackendSources(client))

    app.state.database = database
    app.state.backend_client = client
    app.state.registry = registry
    app.state.audit = audit
    app.state.crud = CrudService(client, registry, audit)
    app.state.pipeline = pipeline

    await _discover(registry)
    await pipeline.start()
    logger.info("observer eye middleware ready")
    try:
        yield
    finally:
        left = await pipeline.stop()
        logger.info("pipeline stopped with %d points unprocessed", left)
        await client.close()
        await database.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level)
    app = FastAPI(
        title="Observer Eye middleware",
        version="0.1.0",
        summary="CRUD and telemetry between the platform's dashboards, agents and Django backend.",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    install_problem_handlers(app)
    app.add_middleware(RequestLogMiddleware)
    app.include_router(health.router)
    app.include_router(crud_router)
    app.include_router(telemetry_router)
    return app


def main() -> None:
    settings = Settings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
