"""HTTP routes of the telemetry pipeline: agents post points, dashboards read findings.

Points arrive as JSON or NDJSON, optionally gzip or deflate compressed; OTLP has its own routes
in `telemetry.otlp.routes`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from service.problems import Problem
from service.request_body import read_body
from service.request_limits import QUERY_TEXT
from telemetry.ingest_formats import NDJSON, native_format, parse_json, parse_ndjson
from telemetry.pipeline import Pipeline
from telemetry.points import iso, parse_instant

router = APIRouter(prefix="/telemetry", tags=["telemetry"])

_TIME_FIELDS = ("timestamp", "breach_started", "last_timestamp")
Limit = Annotated[int, Query(ge=1, le=10_000)]
BODY_LIMIT = "telemetry_max_body_bytes"  # the setting a 413 names


# Read by hand (JSON or NDJSON, maybe compressed): the OpenAPI document says what they take.
POINT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}
BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


@router.post("", status_code=202, openapi_extra=POINT_BODY)
async def post_point(request: Request) -> JSONResponse:
    pipeline = pipeline_of(request)
    with pipeline.accepting():
        body_format, body = await _read(request, pipeline)

        # An NDJSON body is a batch whatever the route: each line is one point.
        if body_format == NDJSON:
            return await _submit_batch(pipeline, parse_ndjson(body), request)
        point = parse_json(body)
        accepted = await pipeline.submit_one(point, client_of(request), rate_key_of(request))
        return JSONResponse(accepted, status_code=202)


@router.post("/batch", status_code=202, openapi_extra=BATCH_BODY)
async def post_batch(request: Request) -> JSONResponse:
    pipeline = pipeline_of(request)
    with pipeline.accepting():
        body_format, body = await _read(request, pipeline)

        if body_format == NDJSON:
            return await _submit_batch(pipeline, parse_ndjson(body), request)
        return await _submit_batch(pipeline, _batch_items(parse_json(body)), request)


async def _read(request: Request, pipeline: Pipeline) -> tuple[str, bytes]:
    """The body's format and the decoded body; refusals come before reading."""
    pipeline.collector.check_open()
    body_format = native_format(request)
    return body_format, await read_body(request, pipeline.max_body_bytes, limit=BODY_LIMIT)


async def _submit_batch(pipeline: Pipeline, items: list[Any], request: Request) -> JSONResponse:
    pipeline.collector.check_size(len(items))
    accepted = await pipeline.submit(items, client_of(request), rate_key_of(request))
    return JSONResponse(accepted, status_code=202)


@router.get("/anomalies", dependencies=QUERY_TEXT)
async def get_anomalies(
    request: Request,
    service: str | None = None,
    name: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    pipeline = pipeline_of(request)
    start, end = instant_param("since", since), instant_param("until", until)
    found = pipeline.analyzer.anomalies(service, name, start, end, limit)
    return {"items": [_render(item) for item in found]}


@router.get("/analysis", dependencies=QUERY_TEXT)
async def get_analysis(request: Request, limit: Limit = 100) -> dict[str, Any]:
    pipeline = pipeline_of(request)
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


@router.get("/metrics")
async def get_metrics(request: Request) -> dict[str, Any]:
    return pipeline_of(request).metrics()


def pipeline_of(request: Request) -> Pipeline:
    pipeline = getattr(request.app.state, "pipeline", None)
    if pipeline is None:
        raise Problem(503, "The telemetry pipeline is not running.", headers={"Retry-After": "5"})
    return pipeline


def client_of(request: Request) -> str:
    """The sender's address, which the enricher classifies."""
    return request.client.host if request.client is not None else "unknown"


def rate_key_of(request: Request) -> str:
    """Who is rate-limited: the authenticated caller, so agents behind one address (a NAT, a
    collector) keep their own limits; the address for an app built without authentication."""
    identity = getattr(request.state, "identity", None)
    return identity.principal if identity is not None else client_of(request)


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


def instant_param(field: str, text: str | None) -> float | None:
    """A `since`/`until` query value as Unix seconds, or a 422 naming the parameter."""
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
