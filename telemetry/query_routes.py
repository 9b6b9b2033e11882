"""Read routes over what the pipeline learnt, and the threshold rules and alerts.

GET    /telemetry/correlations   error groups, cascades and co-moving metric series
GET    /telemetry/traces/{id}    one assembled trace
GET    /telemetry/services       the learnt service dependency graph
GET    /telemetry/series         recent points of a series, downsampled for charts
GET    /telemetry/rules          the threshold rules in force (API and backend)
POST   /telemetry/rules          add a rule
DELETE /telemetry/rules/{id}     remove a rule and resolve its open alerts
GET    /telemetry/alerts         alerts, from the `alerts` table
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from service.json_route import CheckedRoute
from service.problems import Problem
from service.request_limits import check_query_values, stored_time
from telemetry import alert_store
from telemetry.alert_sink import AlertSink
from telemetry.comovement import CoMovementQuery, co_moving, snapshot
from telemetry.pipeline import Pipeline
from telemetry.points import iso
from telemetry.routes import instant_param
from telemetry.rules import RuleIn
from telemetry.series_store import downsample

# Rules arrive as JSON bodies: the same size limit and strict reader as the CRUD routes.
router = APIRouter(prefix="/telemetry", tags=["telemetry"], route_class=CheckedRoute)

Limit = Annotated[int, Query(ge=1, le=10_000)]
Kind = Literal["trace", "correlation", "cascade", "metric"]
State = Literal["pending", "firing", "resolved"]


@router.get("/correlations")
async def get_correlations(
    request: Request,
    service: str | None = None,
    kind: Kind | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    pipeline = _pipeline(request)
    start, end = instant_param("since", since), instant_param("until", until)
    items: list[dict[str, Any]] = []
    if kind != "metric":
        items = pipeline.correlator.correlations(service, limit, kind=kind, since=start, until=end)
    if kind in (None, "metric"):
        items.extend(await _co_moving(pipeline, service, start, end))
    return {"items": items[:limit]}


@router.get("/traces/{trace_id}")
async def get_trace(request: Request, trace_id: str) -> dict[str, Any]:
    trace = _pipeline(request).correlator.trace(trace_id)
    if trace is None:
        raise Problem(404, f"No trace {trace_id!r} is held; it is unknown or was evicted.")
    return trace


@router.get("/services")
async def get_services(request: Request, service: str | None = None) -> dict[str, Any]:
    return _pipeline(request).correlator.graph.view(service)


@router.get("/series")
async def get_series(
    request: Request,
    name: str,
    service: str | None = None,
    since: str | None = None,
    until: str | None = None,
    step: Annotated[float | None, Query(gt=0)] = None,
    buckets: Annotated[int, Query(ge=1, le=10_000)] = 300,
) -> dict[str, Any]:
    """Each matching series, its points in at most `buckets` buckets of at least `step` s."""
    store = _pipeline(request).analyzer.store
    start, end = instant_param("since", since), instant_param("until", until)
    found = []
    for key in sorted(store.matching(service, name), key=repr):
        ts, values = store.recent(key)
        points = downsample(ts, values, start, end, buckets, step)
        for point in points:
            point["start"] = iso(point["start"])
        found.append(
            {"service": key[0], "name": key[1], "attributes": dict(key[2]), "points": points}
        )
    return {"series": found}


@router.get("/rejections")
async def get_rejections(request: Request) -> dict[str, Any]:
    """Acknowledged points the processor set aside (non-finite values), the latest last."""
    processor = _pipeline(request).processor
    return {"count": processor.non_finite, "items": list(processor.rejections)}


@router.get("/rules")
async def get_rules(request: Request) -> dict[str, Any]:
    rules = _pipeline(request).analyzer.rules
    return {"items": [rule.view() for rule in rules.rules()]}


@router.post("/rules", status_code=201)
async def post_rule(request: Request, body: RuleIn, response: Response) -> dict[str, Any]:
    rule = await _sink(request).add_rule(body)
    response.headers["Location"] = f"/telemetry/rules/{rule.id}"
    return rule.view()


@router.delete("/rules/{rule_id}", status_code=204)
async def delete_rule(request: Request, rule_id: str) -> Response:
    if rule_id.startswith("backend:"):
        raise Problem(409, "This rule comes from the backend's alert rules; change it there.")
    if not await _sink(request).delete_rule(rule_id):
        raise Problem(404, f"No threshold rule {rule_id!r}.")
    return Response(status_code=204)


@router.get("/alerts")
async def get_alerts(
    request: Request,
    state: State | None = None,
    service: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Alerts by start time, the latest first; includes changes not yet flushed."""
    check_query_values(request)  # no NUL or other control characters reach the database
    sink = _sink(request)
    await sink.save_pending()
    rows = await alert_store.list_alerts(
        sink.database,
        state=state,
        service=service,
        since=stored_time("since", instant_param("since", since)),
        until=stored_time("until", instant_param("until", until)),
        limit=limit,
    )
    return {"items": [_alert_view(row) for row in rows]}


def _pipeline(request: Request) -> Pipeline:
    pipeline = getattr(request.app.state, "pipeline", None)
    if pipeline is None:
        raise Problem(503, "The telemetry pipeline is not running.", headers={"Retry-After": "5"})
    return pipeline


def _sink(request: Request) -> AlertSink:
    sink = getattr(request.app.state, "alert_sink", None)
    if sink is None:
        raise Problem(503, "Alerts are not being recorded yet.", headers={"Retry-After": "5"})
    return sink


async def _co_moving(
    pipeline: Pipeline, service: str | None, since: float | None, until: float | None
) -> list[dict[str, Any]]:
    config = pipeline.analyzer.config
    query = CoMovementQuery(
        bucket_seconds=config.comovement_bucket_seconds, max_series=config.comovement_max_series
    )
    # Copied on the loop (the worker writes the store between awaits), tested off it.
    taken = snapshot(pipeline.analyzer.store, service, since, until, query.max_series)
    return await asyncio.to_thread(co_moving, taken, query, service)


def _alert_view(row: dict[str, Any]) -> dict[str, Any]:
    view = {
        field: row[field]
        for field in (
            "id",
            "fingerprint",
            "rule",
            "rule_id",
            "service",
            "name",
            "attributes",
            "severity",
            "state",
            "operator",
            "value",
            "threshold",
        )
    }
    for field in ("started_at", "fired_at", "resolved_at"):
        view[field] = alert_store.iso_moment(row[field]) if row[field] is not None else None
    view["backend_id"] = row["backend_id"] or None
    return view
