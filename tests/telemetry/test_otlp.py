"""OTLP/HTTP ingestion, driven by the real OpenTelemetry SDK and its OTLP/HTTP exporters.

The exporters are synchronous (they use `requests`), so each runs in a thread while the
service answers on this test's event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry import context
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from service.settings import Settings
from telemetry.otlp.routes import router as otlp_router
from telemetry.pipeline import Pipeline
from telemetry.query_routes import router as query_router
from tests.telemetry.conftest import FakeSources, build_app, serve, wait_processed

PROTOBUF = "application/x-protobuf"
NOW_NS = time.time_ns()


@pytest.fixture
def otlp_service(tmp_path: Path):
    @asynccontextmanager
    async def start(
        sources: FakeSources | None = None, **overrides: Any
    ) -> AsyncIterator[tuple[str, httpx.AsyncClient, Pipeline]]:
        pipeline = Pipeline(Settings(data_dir=tmp_path, **overrides), sources=sources)
        app = build_app(pipeline)
        app.include_router(otlp_router)
        app.include_router(query_router)
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield url, client, pipeline
            # Whatever the test did: nothing acknowledged was lost.
            metrics = await wait_processed(client)
            assert metrics["accepted"] == metrics["processed"] + metrics["queued"]
            assert (metrics["queued"], metrics["dropped"]) == (0, 0)

    return start


def _resource(service: str) -> Resource:
    return Resource.create({"service.name": service, "deployment.environment.name": "test"})


def _series(analysis: dict, name: str) -> dict:
    [found] = [series for series in analysis["series"] if series["name"] == name]
    return found


def _export_metrics(url: str, compression: Compression | None = None) -> None:
    exporter = OTLPMetricExporter(endpoint=f"{url}/v1/metrics", compression=compression)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=_resource("checkout"), metric_readers=[reader])
    meter = provider.get_meter("shop")

    meter.create_counter("orders", unit="1").add(3, {"region": "eu"})
    meter.create_gauge("queue.depth").set(17, {"queue": "payments"})
    latency = meter.create_histogram("latency", unit="s")  # converted to ms, but not its count
    for value in (0.25, 0.5, 0.25):
        latency.record(value)
    provider.shutdown()  # exports once more, now, and stops the reader


async def test_sdk_metrics_become_metric_points(otlp_service):
    async with otlp_service() as (url, client, _):
        await asyncio.to_thread(_export_metrics, url, Compression.Gzip)

        metrics = await wait_processed(client)
        analysis = (await client.get("/telemetry/analysis")).json()

    # A counter, a gauge, and a histogram as its count and its sum.
    assert (metrics["accepted"], metrics["processed"], metrics["dropped"]) == (4, 4, 0)
    orders = _series(analysis, "orders")
    assert (orders["service"], orders["last_value"]) == ("checkout", 3.0)
    assert orders["attributes"]["region"] == "eu"
    assert orders["attributes"]["telemetry.sdk.language"] == "python"
    assert _series(analysis, "queue.depth")["last_value"] == 17.0
    assert _series(analysis, "latency.count")["last_value"] == 3.0
    assert _series(analysis, "latency.sum")["last_value"] == 1000.0


def _export_trace(url: str) -> str:
    """A checkout request calling payments, which fails; returns the trace id in hex."""
    checkout = TracerProvider(resource=_resource("checkout"))
    payments = TracerProvider(resource=_resource("payments"))
    for provider in (checkout, payments):
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(f"{url}/v1/traces")))

    with (
        checkout.get_tracer("shop").start_as_current_span("GET /checkout") as root,
        payments.get_tracer("pay").start_as_current_span("charge") as charge,
    ):
        charge.set_status(Status(StatusCode.ERROR, "card declined"))
    for provider in (checkout, payments):
        provider.shutdown()
    return format(root.get_span_context().trace_id, "032x")


async def test_sdk_spans_become_trace_points_and_are_correlated(otlp_service):
    async with otlp_service() as (url, client, _):
        trace_id = await asyncio.to_thread(_export_trace, url)

        metrics = await wait_processed(client)
        analysis = (await client.get("/telemetry/analysis")).json()
        assembled = (await client.get(f"/telemetry/traces/{trace_id}")).json()

    assert (metrics["accepted"], metrics["processed"], metrics["dropped"]) == (2, 2, 0)
    charge = _series(analysis, "charge")
    assert charge["service"] == "payments"
    assert charge["attributes"]["otel.status_code"] == "ERROR"
    assert charge["attributes"]["span.kind"] == "internal"
    assert 0 <= charge["last_value"] < 10_000  # the span's duration in milliseconds
    assert (assembled["span_count"], assembled["services"]) == (2, ["checkout", "payments"])
    [root] = assembled["tree"]
    assert (root["name"], [child["name"] for child in root["children"]]) == (
        "GET /checkout",
        ["charge"],
    )
    assert (assembled["root_cause"]["service"], assembled["root_cause"]["name"]) == (
        "payments",
        "charge",
    )


def _export_logs(url: str) -> str:
    """A span and an error logged inside it; returns the trace id in hex."""
    logs = LoggerProvider(resource=_resource("billing"))
    logs.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(f"{url}/v1/logs")))
    spans = TracerProvider(resource=_resource("billing"))
    spans.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(f"{url}/v1/traces")))

    with spans.get_tracer("billing").start_as_current_span("invoice") as span:
        logs.get_logger("billing.render").emit(
            context=context.get_current(),
            severity_number=SeverityNumber.ERROR,
            severity_text="ERROR",
            body="invoice A-17 could not be rendered",
            attributes={"invoice": "A-17"},
        )
    logs.shutdown()
    spans.shutdown()
    return format(span.get_span_context().trace_id, "032x")


async def test_sdk_logs_become_log_points_linked_to_their_trace(otlp_service):
    async with otlp_service() as (url, client, _):
        trace_id = await asyncio.to_thread(_export_logs, url)

        metrics = await wait_processed(client)
        assembled = (await client.get(f"/telemetry/traces/{trace_id}")).json()

    assert (metrics["accepted"], metrics["processed"], metrics["dropped"]) == (2, 2, 0)
    assert assembled["span_count"] == 1
    [log] = assembled["linked"]
    assert (log["type"], log["name"], log["severity"]) == ("log", "billing.render", "error")
    assert log["message"] == "invoice A-17 could not be rendered"


async def test_a_retried_export_is_counted_as_duplicates(otlp_service):
    async with otlp_service() as (url, client, _):
        body = _metrics_request([("cpu", 0.5)]).SerializeToString()
        headers = {"content-type": PROTOBUF}

        first = await client.post("/v1/metrics", content=body, headers=headers)
        again = await client.post("/v1/metrics", content=body, headers=headers)
        metrics = await wait_processed(client)

    assert (first.status_code, first.content, again.status_code, again.content) == (
        200,
        b"",
        200,
        b"",
    )
    assert (metrics["accepted"], metrics["duplicates"], metrics["processed"]) == (1, 1, 1)


def _metrics_request(values: list[tuple[str, float]]) -> Any:
    resource = metrics_pb2.ResourceMetrics()
    resource.resource.attributes.append(
        common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value="api"))
    )
    scope = resource.scope_metrics.add()
    for index, (name, value) in enumerate(values):
        metric = scope.metrics.add(name=name)
        metric.gauge.data_points.add(time_unix_nano=NOW_NS - 10**9 * index, as_double=value)
    return metrics_service_pb2.ExportMetricsServiceRequest(resource_metrics=[resource])


async def test_protobuf_partial_success_counts_rejected_data_points(otlp_service):
    async with otlp_service() as (_, client, _pipeline):
        body = _metrics_request([("cpu", 0.5), ("cpu", float("nan")), ("mem", float("inf"))])

        response = await client.post(
            "/v1/metrics", content=body.SerializeToString(), headers={"content-type": PROTOBUF}
        )

    assert (response.status_code, response.headers["content-type"]) == (200, PROTOBUF)
    answer = metrics_service_pb2.ExportMetricsServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_data_points == 2
    assert answer.partial_success.error_message == (
        "item 1: value: must be a finite number; item 2: value: must be a finite number"
    )


async def test_json_with_hex_ids_and_string_integers_is_decoded(otlp_service):
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    start = NOW_NS - 2 * 10**9
    document = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "add item",
                                "kind": 2,
                                "startTimeUnixNano": str(start),
                                "endTimeUnixNano": str(start + 250 * 10**6),
                                "status": {"code": 2, "message": "out of stock"},
                                "attributes": [
                                    {"key": "items", "value": {"intValue": "3"}},
                                    {"key": "futureField", "value": {"newKind": 1}},
                                ],
                                "someFutureField": True,
                            }
                        ]
                    }
                ],
            }
        ]
    }
    async with otlp_service() as (_, client, _pipeline):
        response = await client.post("/v1/traces", json=document)
        await wait_processed(client)
        analysis = (await client.get("/telemetry/analysis")).json()
        assembled = (await client.get(f"/telemetry/traces/{trace_id}")).json()

    assert (response.status_code, response.headers["content-type"]) == (200, "application/json")
    assert response.json() == {}
    span = _series(analysis, "add item")
    assert (span["service"], span["last_value"]) == ("cart", 250.0)
    assert (span["attributes"]["items"], span["attributes"]["span.kind"]) == (3, "server")
    [root] = assembled["tree"]
    assert (root["span_id"], root["duration_ms"], root["error"]) == (span_id, 250.0, True)


async def test_json_partial_success_is_answered_in_json(otlp_service):
    document = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "scope": {"name": "worker"},
                        "logRecords": [
                            {"timeUnixNano": str(NOW_NS), "body": {"stringValue": "ok"}},
                            {"timeUnixNano": str(NOW_NS), "body": {"stringValue": "x" * 9000}},
                        ],
                    }
                ]
            }
        ]
    }
    async with otlp_service() as (_, client, _pipeline):
        response = await client.post("/v1/logs", json=document)
        metrics = await wait_processed(client)

    assert response.json() == {
        "partialSuccess": {
            "rejectedLogRecords": "1",
            "errorMessage": "item 1: message: must be at most 8192 characters",
        }
    }
    assert (metrics["accepted"], metrics["rejected"], metrics["dropped"]) == (1, 1, 0)


async def test_bad_data_is_400_with_a_status_in_the_request_content_type(otlp_service):
    async with otlp_service() as (_, client, _pipeline):
        binary = await client.post(
            "/v1/metrics", content=b"\xff\xff\xff", headers={"content-type": PROTOBUF}
        )
        text = await client.post(
            "/v1/traces",
            json={"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "not hex"}]}]}]},
        )

    assert (binary.status_code, binary.headers["content-type"]) == (400, PROTOBUF)
    assert status_pb2.Status.FromString(binary.content).code == 3  # INVALID_ARGUMENT
    assert (text.status_code, text.headers["content-type"]) == (400, "application/json")
    assert text.json() == {
        "code": 3,
        "message": "`traceId` must be a hex string, not 'not hex'.",
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "`traceId` must be a hex string, not 'not hex'.",
    }


@pytest.mark.parametrize("span_id", ["00 11 22 33 44 55 66 77", "0011223344556677\n", "001"])
async def test_an_otlp_json_id_is_hex_digits_alone(otlp_service, span_id):
    span = {"traceId": "00" * 16, "spanId": span_id, "name": "x"}
    async with otlp_service() as (_, client, _pipeline):
        answer = await client.post(
            "/v1/traces", json={"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
        )

    assert (answer.status_code, answer.json()["message"]) == (
        400,
        f"`spanId` must be a hex string, not {span_id!r}.",
    )


async def test_other_content_types_are_415_and_oversize_bodies_413(otlp_service):
    body = _metrics_request([("cpu", float(i)) for i in range(100)]).SerializeToString()
    async with otlp_service(telemetry_max_body_bytes=1024) as (_, client, _pipeline):
        text = await client.post(
            "/v1/logs", content=b"hello", headers={"content-type": "text/plain"}
        )
        large = await client.post("/v1/metrics", content=body, headers={"content-type": PROTOBUF})

    assert (text.status_code, text.headers["content-type"]) == (415, "application/problem+json")
    assert text.headers["accept-post"] == "application/x-protobuf, application/json"
    assert (large.status_code, large.headers["content-type"]) == (413, PROTOBUF)
    assert status_pb2.Status.FromString(large.content).message == (
        "The request body is over the limit of 1024 bytes."
    )


async def test_a_full_queue_is_429_with_retry_after_and_nothing_acknowledged(otlp_service):
    sources = FakeSources()
    sources.gate.clear()  # the worker waits on the backend, so the queue cannot drain
    first = _metrics_request([("cpu", float(i)) for i in range(4)]).SerializeToString()
    second = _metrics_request([("mem", float(i)) for i in range(2)]).SerializeToString()
    headers = {"content-type": PROTOBUF}
    async with otlp_service(sources, telemetry_queue_max_items=5) as (_, client, _pipeline):
        assert (await client.post("/v1/metrics", content=first, headers=headers)).status_code == 200

        refused = await client.post("/v1/metrics", content=second, headers=headers)

        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert status_pb2.Status.FromString(refused.content).code == 8  # RESOURCE_EXHAUSTED
        metrics = (await client.get("/telemetry/metrics")).json()
        assert (metrics["accepted"], metrics["queued"], metrics["refused"]) == (4, 4, 2)

        sources.gate.set()
        await wait_processed(client)
        assert (
            await client.post("/v1/metrics", content=second, headers=headers)
        ).status_code == 200
        metrics = await wait_processed(client)
        assert (metrics["accepted"], metrics["processed"], metrics["dropped"]) == (6, 6, 0)


async def test_shutting_down_is_503_with_retry_after(otlp_service):
    async with otlp_service() as (_, client, pipeline):
        pipeline.refuse_new()

        response = await client.post(
            "/v1/metrics",
            content=_metrics_request([("cpu", 1.0)]).SerializeToString(),
            headers={"content-type": PROTOBUF},
        )

    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    assert status_pb2.Status.FromString(response.content).code == 14  # UNAVAILABLE


async def test_deeply_nested_otlp_json_is_400(otlp_service):
    nested = '{"arrayValue": {"values": [' * 5_000 + "]}}" * 5_000
    body = (
        '{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": ' + nested + "}]}]}]}"
    ).encode()
    async with otlp_service() as (_, client, _pipeline):
        response = await client.post(
            "/v1/logs", content=body, headers={"content-type": "application/json"}
        )

    assert (response.status_code, response.json()["code"]) == (400, 3)
    assert response.json()["detail"] == "The body is not valid JSON: it is nested too deeply."


async def test_otlp_json_that_python_cannot_read_is_400_in_plain_words(otlp_service):
    long_integer = '{"resourceMetrics": [], "n": ' + "9" * 5_000 + "}"
    async with otlp_service() as (_, client, _pipeline):
        response = await client.post(
            "/v1/metrics", content=long_integer, headers={"content-type": "application/json"}
        )

    assert (response.status_code, response.json()["detail"]) == (
        400,
        "The body is not valid JSON: an integer has more than 4300 digits.",
    )
