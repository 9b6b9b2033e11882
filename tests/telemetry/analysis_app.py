"""A pipeline with its alert sink, read routes and a real SQLite database, on a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from django_integration.connection import Database
from service.problems import install_problem_handlers
from service.settings import Settings
from telemetry.alert_sink import AlertSink, Backend
from telemetry.pipeline import Pipeline
from telemetry.query_routes import router as query_router
from telemetry.routes import router as ingest_router
from telemetry.sources import BackendSources
from tests.telemetry.conftest import serve


@dataclass
class AnalysisService:
    client: httpx.AsyncClient
    pipeline: Pipeline
    sink: AlertSink
    database: Database


@asynccontextmanager
async def analysis_service(
    data_dir: Path,
    sources: BackendSources | None = None,
    backend: Backend | None = None,
    **overrides: Any,
) -> AsyncIterator[AnalysisService]:
    """Start the pipeline and sink over `data_dir/middleware.db`; the same file survives."""
    database = Database(f"sqlite:///{data_dir / 'middleware.db'}")
    await database.migrate()
    pipeline = Pipeline(Settings(data_dir=data_dir, **overrides), sources=sources)
    sink = AlertSink(
        database, pipeline.analyzer.alerts, pipeline.analyzer.rules, backend, interval=0.05
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await sink.start()
        await pipeline.start()
        yield
        await pipeline.stop(drain_timeout=5.0)
        await sink.stop()

    app = FastAPI(lifespan=lifespan)
    install_problem_handlers(app)
    app.include_router(ingest_router)
    app.include_router(query_router)
    app.state.pipeline = pipeline
    app.state.alert_sink = sink
    try:
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield AnalysisService(client, pipeline, sink, database)
    finally:
        await database.dispose()
