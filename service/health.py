"""Probes for orchestrators (`/health/*`) and for operators (`/django/health`).

`/health/live` never looks past the process, so a dead backend or database cannot get
the service restarted; `/health/ready` checks only what this service itself needs.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from django_integration.exceptions import BackendError
from service.problems import Problem

router = APIRouter(tags=["health"])


@router.get("/health/live", summary="The process is up")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", summary="The database and the pipeline can take work")
async def ready(request: Request) -> dict[str, Any]:
    state = request.app.state
    database = await state.database.health()
    pipeline_ready = bool(state.pipeline.ready)
    checks = {"database": database, "pipeline": {"ok": pipeline_ready}}
    reasons = [name for name, check in checks.items() if not check["ok"]]
    if reasons:
        raise Problem(
            503,
            "Not ready: " + ", ".join(f"{name} is not available" for name in reasons) + ".",
            headers={"Retry-After": "5"},
            extra={"checks": checks},
        )
    return {"status": "ok", "checks": checks}


@router.get("/django/health", summary="Backend reachability, breaker, discovery and database")
async def django_health(request: Request) -> dict[str, Any]:
    state = request.app.state
    client = state.backend_client
    report: dict[str, Any] = {
        # Never the URL: this body reaches callers, and internal host names stay in the logs.
        "backend": "embedded" if state.settings.embedded_backend else "remote",
        "retries": client.retries,
        "calls": dict(client.outcomes),
        "entity_types": state.registry.entity_types,
        "missing_apps": state.registry.missing_apps(),
        # Types whose versions are checked under this instance's lock, not the backend's.
        "without_conditional_writes": state.registry.without_conditional_writes(),
        "discovery": state.discovery.report(),
        "database": await state.database.health(),
    }

    started = time.perf_counter()
    try:
        await client.probe("/api/health/", state.settings.backend_health_budget)
    except BackendError as error:
        report.update(reachable=False, error=error.detail, breaker=client.breaker.snapshot())
        raise Problem(
            503,
            f"The backend is not reachable: {error.detail}",
            headers=error.headers,
            extra=report,
        ) from error

    report.update(
        reachable=True,
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
        breaker=client.breaker.snapshot(),
    )
    return report
