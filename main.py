"""Observer Eye middleware: `create_app()` builds the service; `python main.py` serves it."""

from __future__ import annotations

import gc
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from auth.lifecycle import install_authentication, start_authentication, stop_authentication
from auth.routes import router as auth_router
from crud.audit import AuditTrail
from crud.cache import ReadCache
from crud.idempotency import IdempotencyStore
from crud.read_route import EntityReadRoute
from crud.registry import EntityRegistry
from crud.rest import router as rest_router
from crud.routes import router as crud_router
from crud.service import CrudService
from django_integration.api_client import BackendClient
from django_integration.backend_sources import DjangoBackendSources
from django_integration.connection import Database
from django_integration.discovery import BackendDiscovery
from django_integration.embedded import EMBEDDED_BASE_URL, embedded_transport
from service import health, metrics
from service.cors import ProblemCORSMiddleware, cors_options
from service.edge import EdgeMiddleware
from service.logging import configure_logging
from service.metrics import ServiceMetrics
from service.openapi_problems import document_problems
from service.problems import install_problem_handlers
from service.settings import Settings
from telemetry.alert_sink import AlertSink
from telemetry.otlp.routes import router as otlp_router
from telemetry.pipeline import Pipeline
from telemetry.query_routes import router as telemetry_query_router
from telemetry.routes import router as telemetry_router

logger = logging.getLogger("observer")


async def _connect_backend(settings: Settings) -> BackendClient:
    if settings.embedded_backend:
        transport, token = await embedded_transport(settings)
        logger.info("no OBSERVER_BACKEND_URL set: using the embedded reference backend")
        return BackendClient(settings, base_url=EMBEDDED_BASE_URL, token=token, transport=transport)
    return BackendClient(settings, base_url=settings.backend_url, token=settings.backend_token)


async def _discover(discovery: BackendDiscovery, registry: EntityRegistry) -> None:
    # The service must start and answer probes while the backend is down; the
    # discovery schedule (and the first CRUD call) fills the registry in once it is back.
    if not await discovery.run_once():
        return
    if missing := registry.missing_apps():
        logger.warning("the backend does not serve these expected apps: %s", ", ".join(missing))
    if unconditional := registry.without_conditional_writes():
        logger.warning(
            "the backend does not write these conditionally on If-Match; versions are "
            "checked under this instance's own per-entity lock instead: %s",
            ", ".join(unconditional),
        )


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    database = Database.from_settings(settings)
    if settings.database_migrate_on_start:
        await database.migrate()
    client = await _connect_backend(settings)
    client.observe_calls(app.state.metrics.observe_backend_call)
    registry = EntityRegistry(client, overrides_file=settings.entity_overrides_file)
    audit = AuditTrail(database, sensitive_fields=settings.sensitive_field_words)
    await start_authentication(app, settings, database, audit)
    cache = ReadCache.from_settings(settings)
    pipeline = Pipeline(settings, sources=DjangoBackendSources(client))
    discovery = BackendDiscovery(registry.refresh, interval=settings.discovery_interval_seconds)

    app.state.database = database
    app.state.backend_client = client
    app.state.registry = registry
    app.state.audit = audit
    app.state.cache = cache
    app.state.idempotency = IdempotencyStore(database, ttl_seconds=settings.idempotency_ttl_seconds)
    app.state.crud = CrudService(client, registry, audit, cache)
    app.state.pipeline = pipeline
    backend_for_alerts = client if settings.telemetry_alerts_to_backend else None
    alert_sink = AlertSink(
        database, pipeline.analyzer.alerts, pipeline.analyzer.rules, backend_for_alerts
    )
    app.state.alert_sink = alert_sink
    app.state.discovery = discovery

    await _discover(discovery, registry)
    discovery.start()
    await alert_sink.start()  # loads the API's rules before the first point is analysed
    await pipeline.start()
    thresholds = _tune_gc()
    logger.info("observer eye middleware ready")
    try:
        yield
    finally:
        _restore_gc(thresholds)
        await discovery.stop()
        # The pipeline logs how many points it left unprocessed.
        await pipeline.stop(settings.telemetry_drain_timeout_seconds)
        await alert_sink.stop()  # saves the alerts the drained points raised
        await stop_authentication(app)
        await cache.close()
        await client.close()
        await database.dispose()


# Allocations between young collections; CPython's default is 700. The pipeline allocates a
# dict per point, so at 50,000 points/s the default runs a young pass every few hundred
# microseconds and an occasional full pass of 30 ms or more in the middle of an accept.
_GC_GEN0_THRESHOLD = 50_000


def _tune_gc() -> tuple[int, int, int]:
    """Move start-up objects (Django, libraries, settings) out of the collector's way."""
    thresholds = gc.get_threshold()
    # Frozen objects are never scanned again: full passes then walk only what the service
    # allocated since, which took the bench's p99 accept from 104 ms to about 65 ms.
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_GEN0_THRESHOLD, thresholds[1], thresholds[2])
    return thresholds


def _restore_gc(thresholds: tuple[int, int, int]) -> None:
    """Undo `_tune_gc`, so an app started and stopped in a test run leaves no frozen objects."""
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level)
    app = FastAPI(
        title="Observer Eye middleware",
        version="0.1.0",
        summary="CRUD and telemetry between the platform's dashboards, agents and Django backend.",
        lifespan=_lifespan,
        # FastAPI's own OpenTelemetry instrumentation is off: the service measures and logs
        # every request itself (service/edge.py) and passes trace context on to the backend,
        # and the instrumentation's check for a configured provider cost about 50 µs of every
        # request on this machine, the cache-miss read included.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.metrics = ServiceMetrics()
    app.state.metrics.watch(app.state)
    install_problem_handlers(app)
    install_authentication(app, settings)  # first: its middleware must run innermost
    # Outside anything that may refuse a caller, so a refusal still carries CORS headers and
    # a preflight needs no credential.
    app.add_middleware(ProblemCORSMiddleware, **cors_options(settings.cors_allowed_origins))
    # Outermost: request id, trace context, security headers, metrics and the log line for
    # every answer, preflights and refusals included. The 500 handler adds its own headers
    # (see problems.py), since Starlette answers a crash from outside every middleware.
    docs = (app.docs_url, app.redoc_url, app.openapi_url, app.swagger_ui_oauth2_redirect_url)
    app.add_middleware(
        EdgeMiddleware, metrics=app.state.metrics, cacheable_paths=[p for p in docs if p]
    )
    # The router tries routes in this order (no two of these routers share a first path
    # segment), so the busiest come first: a REST read matched last cost about 40 µs more.
    # First of all, the REST read of one entity: a cache miss's added latency has a budget.
    app.router.routes.append(EntityReadRoute())
    for router in (
        rest_router,
        otlp_router,
        telemetry_router,
        telemetry_query_router,
        crud_router,
        health.router,
        metrics.router,
        auth_router,
    ):
        app.include_router(router)
    document_problems(app)
    return app


class _Server(uvicorn.Server):
    """Uvicorn lets requests in flight finish before the lifespan ends; on the exit signal,
    tell the backend client at once, so that their retry sleeps end instead of running on,
    and refuse new telemetry (503) while the queue drains."""

    def handle_exit(self, sig: int, frame: object) -> None:
        client = getattr(self.config.app.state, "backend_client", None)
        if client is not None:
            client.begin_shutdown()
        pipeline = getattr(self.config.app.state, "pipeline", None)
        if pipeline is not None:
            pipeline.refuse_new()
        super().handle_exit(sig, frame)  # type: ignore[arg-type]


def _settings_or_exit() -> Settings:
    """Settings from the environment; on a bad value, say which variable and stop."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            "  "
            + (f"OBSERVER_{error['loc'][0]}: ".upper() if error["loc"] else "")
            + error["msg"].removeprefix("Value error, ")
            for error in exc.errors()
        ]
        sys.exit("Invalid settings, the service did not start:\n" + "\n".join(lines))


def main() -> None:
    settings = _settings_or_exit()
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        # Uvicorn would trust X-Forwarded-For from 127.0.0.1 by default: any local process
        # could then pick the address the failure limit and the audit trail go by.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )
    try:
        _Server(config).run()
    except KeyboardInterrupt:
        # On Ctrl-C uvicorn shuts down gracefully, then raises the signal again so that the
        # process ends by it; the shutdown is logged by then, so end with its status, quietly.
        raise SystemExit(128 + signal.SIGINT) from None


if __name__ == "__main__":
    main()
