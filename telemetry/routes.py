"""HTTP routes of the telemetry pipeline: agents post points, dashboards read findings."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from service.problems import Problem
from telemetry.pipeline import Pipeline
from telemetry.points import iso, parse_instant

router = APIRouter(prefix="/telemetry", tags=["telemetry"])

_TIME_FIELDS = ("timestamp", "breach_started", "last_timestamp")
Limit = Annotated[int, Query(ge=1, le=10_000)]


@router.post("", status_code=202)
async def post_point(request: Request) -> JSONResponse:
    pipeline = _pipeline(request)
    point = _json_body(await request.body())
    return JSONResponse(pipeline.submit_one(point, _client(request)), status_code=202)


@router.post("/batch", status_code=202)
async def post_batch(request: Request) -> JSONResponse:
    pipeline = _pipeline(request)
    items = _batch_items(_json_body(await request.body()))
    limit = pipeline.collector.batch_max_items
    if len(items) > limit:
        raise Problem(
            413,
            f"A batch holds at most {limit} points; this one has {len(items)}.",
            title="Batch Too Large",
        )
    return JSONResponse(pipeline.submit(items, _client(request)), status_code=202)


@router.get("/anomalies")
async def get_anomalies(
    request: Request,
    service: str | None = None,
    name: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    pipeline = _pipeline(request)
    start, end = _instant("since", since), _instant("until", until)
    found = pipeline.analyzer.anomalies(service, name, start, end, limit)
    return {"items": [_render(item) for item in found]}


@router.get("/analysis")
async def get_analysis(request: Request, limit: Limit = 100) -> dict[str, Any]:
    pipeline = _pipeline(request)
    analyzer = pipeline.analyzer
    recent = analyzer.recent_anomalies(limit)
    return {
        "series_count": analyzer.series_count,
        "counters": analyzer.counters,
        "series": [_render(item) for item in analyzer.series(limit)],
        "recent_anomalies": [_render(item) for item in recent],
        "trends": [_render(item) for item in list(analyzer.trends)[-limit:]],
        "threshold_alerts": [_render(item) for item in list(analyzer.threshold_alerts)[-limit:]],
    }


@router.get("/correlations")
async def get_correlations(
    request: Request, service: str | None = None, limit: Limit = 100
) -> dict[str, Any]:
    pipeline = _pipeline(request)
    return {"items": pipeline.correlator.correlations(service, limit)}


@router.get("/metrics")
async def get_metrics(request: Request) -> dict[str, Any]:
    return _pipeline(request).metrics()


def _pipeline(request: Request) -> Pipeline:
    pipeline = getattr(request.app.state, "pipeline", None)
    if pipeline is None:
        raise Problem(503, "The telemetry pipeline is not running.", headers={"Retry-After": "5"})
    return pipeline


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _json_body(body: bytes) -> Any:
    # Python's json takes NaN and Infinity literals; they parse to floats that the point
    # validation then rejects as non-finite, item by item.
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(
            400, f"The request body is not valid JSON: {exc}.", title="Malformed JSON"
        ) from exc


def _batch_items(body: Any) -> list[Any]:
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        return body["items"]
    raise Problem(
        422,
        "A batch is a JSON array of points or an object with an `items` array.",
        errors=[{"field": "items", "message": "must be an array of points"}],
    )


def _instant(field: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_instant(text)
    except (ValueError, OverflowError) as exc:
        raise Problem(
            422,
            f"`{field}` is not a date-time.",
            errors=[{"field": field, "message": "must be an ISO 8601 date-time or Unix seconds"}],
        ) from exc


def _render(finding: dict[str, Any]) -> dict[str, Any]:
    rendered = dict(finding)
    for field in _TIME_FIELDS:
        if isinstance(rendered.get(field), float):
            rendered[field] = iso(rendered[field])
    return rendered
