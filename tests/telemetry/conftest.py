"""A minimal app around one Pipeline, served by uvicorn on 127.0.0.1 and driven with httpx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from service.problems import install_problem_handlers
from service.settings import Settings
from telemetry.pipeline import Pipeline
from telemetry.routes import router
from telemetry.sources import BackendSources

ServiceFactory = Callable[..., AbstractAsyncContextManager[tuple[httpx.AsyncClient, Pipeline]]]


class FakeSources:
    """Stands in for the backend: fixed records, a switch to fail, a gate to hold the worker."""

    def __init__(
        self,
        applications: list[dict[str, Any]] | None = None,
        alert_rules: list[dict[str, Any]] | None = None,
    ) -> None:
        self.records = {"applications": applications or [], "alert_rules": alert_rules or []}
        self.failing = False
        self.gate = asyncio.Event()
        self.gate.set()
        self.calls = {"applications": 0, "alert_rules": 0}

    async def applications(self) -> list[dict[str, Any]]:
        return await self._read("applications")

    async def alert_rules(self) -> list[dict[str, Any]]:
        return await self._read("alert_rules")

    async def _read(self, what: str) -> list[dict[str, Any]]:
        await self.gate.wait()
        self.calls[what] += 1
        if self.failing:
            raise ConnectionError("backend unreachable")
        return self.records[what]


def build_app(pipeline: Pipeline) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pipeline.start()
        yield
        await pipeline.stop(drain_timeout=5.0)

    app = FastAPI(lifespan=lifespan)
    install_problem_handlers(app)
    app.include_router(router)
    app.state.pipeline = pipeline
    return app


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def telemetry_service(tmp_path: Path) -> ServiceFactory:
    """Start a pipeline with these settings (and sources) behind a real server."""

    @asynccontextmanager
    async def start(
        sources: BackendSources | None = None, **overrides: Any
    ) -> AsyncIterator[tuple[httpx.AsyncClient, Pipeline]]:
        settings = Settings(data_dir=tmp_path, **overrides)
        pipeline = Pipeline(settings, sources=sources)
        async with (
            serve(build_app(pipeline)) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as client,
        ):
            yield client, pipeline

    return start


async def wait_processed(client: httpx.AsyncClient, deadline: float = 20.0) -> dict[str, Any]:
    """Poll the metrics until every accepted point is processed; the final metrics."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline
    while True:
        metrics = (await client.get("/telemetry/metrics")).json()
        if metrics["processed"] == metrics["accepted"] or loop.time() > give_up:
            return metrics
        await asyncio.sleep(0.01)


def metric(name: str, value: Any, timestamp: Any, **fields: Any) -> dict[str, Any]:
    return {"type": "metric", "name": name, "value": value, "timestamp": timestamp, **fields}
