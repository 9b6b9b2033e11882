"""OTLP/HTTP receiver routes: `POST /v1/metrics`, `/v1/logs` and `/v1/traces`.

Answers follow the OTLP/HTTP specification: 200 with an export response in the request's
content type (a partial success names the rejected count), and for errors a `google.rpc.Status`
in that content type with the status code the specification gives: 400 bad data, 413 too large,
415 other content types, 429 or 503 with `Retry-After` when the pipeline cannot take more.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from service.problems import Problem
from service.request_body import read_body
from telemetry.ingest_formats import JSON, PROTOBUF, media_type
from telemetry.otlp import codec, mapping
from telemetry.otlp.codec import LOGS, METRICS, TRACES, Signal
from telemetry.pipeline import Pipeline
from telemetry.point_batches import check_typed_points
from telemetry.routes import BODY_LIMIT, client_of, pipeline_of, rate_key_of

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["otlp"])

_REASONS_SHOWN = 5


@router.post("/metrics")
async def export_metrics(request: Request) -> Response:
    return await _export(request, METRICS)


@router.post("/traces")
async def export_traces(request: Request) -> Response:
    return await _export(request, TRACES)


@router.post("/logs")
async def export_logs(request: Request) -> Response:
    return await _export(request, LOGS)


async def _export(request: Request, signal: Signal) -> Response:
    wire = _wire_format(request)
    try:
        pipeline = pipeline_of(request)
        with pipeline.accepting():
            pipeline.collector.check_open()
            body = await read_body(request, pipeline.max_body_bytes, limit=BODY_LIMIT)
            items, origins = mapping.points(signal, codec.decode(signal, body, wire))
            senders = (client_of(request), rate_key_of(request))
            rejected, message = await _submit(pipeline, items, origins, senders)
    except Problem as problem:
        content = codec.encode_status(problem, wire)
        return Response(content, problem.status, headers=problem.headers, media_type=wire)

    content = codec.encode_response(signal, rejected, message, wire)
    return Response(content, 200, media_type=wire)


def _wire_format(request: Request) -> str:
    kind = media_type(request, default="")
    if kind in {PROTOBUF, JSON}:
        return kind
    # The one OTLP error that cannot answer in the request's content type.
    raise Problem(
        415,
        f"OTLP/HTTP takes {PROTOBUF} or {JSON}, not {kind or 'a body without Content-Type'}.",
        headers={"Accept-Post": f"{PROTOBUF}, {JSON}"},
    )


async def _submit(
    pipeline: Pipeline, items: list[dict], origins: list[int], senders: tuple[str, str]
) -> tuple[int, str]:
    """Admit the points; the count of OTLP items rejected and why.

    `senders`: the client address and the key the rate limit is kept under.
    """
    if not items:
        return 0, ""
    pipeline.collector.check_size(len(items))
    result = await pipeline.submit(items, *senders, read=check_typed_points)
    if not result["rejected"]:
        return 0, ""

    # A histogram is two points; it is one rejected data point however many of them failed.
    rejected_items = sorted({origins[entry["index"]] for entry in result["rejected"]})
    reasons = [
        f"item {origins[entry['index']]}: {entry['reason']}"
        for entry in result["rejected"][:_REASONS_SHOWN]
    ]
    more = len(result["rejected"]) - _REASONS_SHOWN
    if more > 0:
        reasons.append(f"and {more} more")
    return len(rejected_items), "; ".join(reasons)
