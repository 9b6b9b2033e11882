"""Bodies as agents send them: NDJSON, gzip and deflate, and the limits on size and content."""

from __future__ import annotations

import gzip
import json
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.telemetry.conftest import FakeSources, ServiceFactory, metric, wait_processed

PROBLEM = "application/problem+json"
HOUR_AGO = int(time.time()) - 3600


@pytest.fixture
def telemetry_service(telemetry_service: ServiceFactory) -> ServiceFactory:
    """The shared service, and at the end of every test: nothing acknowledged was lost."""

    @asynccontextmanager
    async def start(*args: Any, **overrides: Any) -> AsyncIterator[Any]:
        async with telemetry_service(*args, **overrides) as (client, pipeline):
            yield client, pipeline
            metrics = await wait_processed(client)
            assert metrics["accepted"] == metrics["processed"] + metrics["queued"]
            assert (metrics["queued"], metrics["dropped"]) == (0, 0)

    return start


def _ndjson(items: list) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in items).encode()


async def _post(client, path: str, body: bytes, content_type: str, **headers: str):
    return await client.post(path, content=body, headers={"content-type": content_type, **headers})


def _invariant(metrics: dict) -> tuple[int, int, int, int]:
    return (metrics["accepted"], metrics["processed"], metrics["queued"], metrics["dropped"])


async def test_ndjson_batch_rejects_a_bad_line_by_index_and_skips_blank_lines(telemetry_service):
    lines = [metric("cpu", 1.0, HOUR_AGO), {"name": "cpu"}, metric("cpu", 3.0, HOUR_AGO + 1)]
    body = _ndjson(lines[:2]) + b"\n   \n" + _ndjson(lines[2:])
    async with telemetry_service() as (client, _):
        response = await _post(client, "/telemetry/batch", body, "application/x-ndjson")

        assert response.status_code == 202
        assert response.json() == {
            "accepted": 2,
            "rejected": [{"index": 1, "reason": "value: is required for metrics"}],
            "duplicates": 0,
        }
        assert _invariant(await wait_processed(client)) == (2, 2, 0, 0)


async def test_ndjson_on_the_single_point_route_is_a_batch(telemetry_service):
    body = _ndjson([metric("cpu", float(i), HOUR_AGO + i) for i in range(3)])
    async with telemetry_service() as (client, _):
        response = await _post(client, "/telemetry", body, "application/x-ndjson; charset=utf-8")

        assert (response.status_code, response.json()["accepted"]) == (202, 3)


async def test_malformed_ndjson_line_is_a_400_naming_the_line(telemetry_service):
    body = _ndjson([metric("cpu", 1.0, HOUR_AGO)]) + b'{"name": "cpu", \n'
    async with telemetry_service() as (client, _):
        response = await _post(client, "/telemetry/batch", body, "application/x-ndjson")

        assert response.status_code == 400
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["detail"].startswith("Line 2 is not valid JSON")
        assert (await client.get("/telemetry/metrics")).json()["received"] == 0


async def test_gzip_and_deflate_bodies_are_decompressed(telemetry_service):
    points = [metric("cpu", float(i), HOUR_AGO + i) for i in range(4)]
    async with telemetry_service() as (client, _):
        zipped = await _post(
            client,
            "/telemetry/batch",
            gzip.compress(json.dumps(points[:2]).encode()),
            "application/json",
            **{"content-encoding": "gzip"},
        )
        deflated = await _post(
            client,
            "/telemetry/batch",
            zlib.compress(_ndjson(points[2:])),
            "application/x-ndjson",
            **{"content-encoding": "deflate"},
        )

        assert (zipped.status_code, zipped.json()["accepted"]) == (202, 2)
        assert (deflated.status_code, deflated.json()["accepted"]) == (202, 2)
        assert _invariant(await wait_processed(client)) == (4, 4, 0, 0)


async def test_a_body_that_inflates_past_the_limit_is_413(telemetry_service):
    # 2 KiB of zeros inside a JSON string compress to a few dozen bytes.
    body = gzip.compress(json.dumps([metric("cpu", 1.0, HOUR_AGO, message="0" * 2048)]).encode())
    async with telemetry_service(telemetry_max_body_bytes=1024) as (client, _):
        response = await _post(
            client, "/telemetry/batch", body, "application/json", **{"content-encoding": "gzip"}
        )

        assert len(body) < 1024
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["detail"] == "The request body is over the limit of 1024 bytes."
        assert (await client.get("/telemetry/metrics")).json()["received"] == 0


async def test_a_body_over_the_limit_is_413(telemetry_service):
    body = json.dumps([metric("cpu", float(i), HOUR_AGO + i) for i in range(40)]).encode()
    async with telemetry_service(telemetry_max_body_bytes=1024) as (client, _):
        response = await _post(client, "/telemetry/batch", body, "application/json")

        assert len(body) > 1024
        assert (response.status_code, response.json()["title"]) == (413, "Content Too Large")


async def test_a_corrupt_gzip_body_is_400(telemetry_service):
    body = gzip.compress(b'[{"name": "cpu", "value": 1}]')[:-12]
    async with telemetry_service() as (client, _):
        truncated = await _post(
            client, "/telemetry/batch", body, "application/json", **{"content-encoding": "gzip"}
        )
        garbage = await _post(
            client,
            "/telemetry/batch",
            b"not gzip",
            "application/json",
            **{"content-encoding": "gzip"},
        )

        assert (truncated.status_code, truncated.json()["detail"]) == (
            400,
            "The compressed body is truncated.",
        )
        assert garbage.status_code == 400
        assert garbage.headers["content-type"] == PROBLEM
        assert garbage.json()["detail"].startswith("The compressed body cannot be decoded")


async def test_other_content_types_and_codings_are_415(telemetry_service):
    async with telemetry_service() as (client, _):
        text = await _post(client, "/telemetry/batch", b"cpu 1", "text/plain")
        brotli = await _post(
            client, "/telemetry/batch", b"[]", "application/json", **{"content-encoding": "br"}
        )

        assert (text.status_code, text.headers["content-type"]) == (415, PROBLEM)
        assert text.headers["accept-post"] == "application/json, application/x-ndjson"
        assert (brotli.status_code, brotli.headers["accept-encoding"]) == (415, "gzip, deflate")


async def test_string_and_attribute_limits_are_settings(telemetry_service):
    items = [
        metric("cpu", 1.0, HOUR_AGO, service="checkout-service"),
        metric("cpu", 2.0, HOUR_AGO, attributes={"a": 1, "b": 2, "c": 3}),
        metric("cpu", 3.0, HOUR_AGO, service="api", attributes={"a": 1}),
    ]
    limits = {"telemetry_max_text_length": 8, "telemetry_max_attributes": 2}
    async with telemetry_service(**limits) as (client, _):
        response = await client.post("/telemetry/batch", json=items)

        assert response.json() == {
            "accepted": 1,
            "rejected": [
                {"index": 0, "reason": "service: must be at most 8 characters"},
                {"index": 1, "reason": "attributes: must have at most 2 entries"},
            ],
            "duplicates": 0,
        }


async def test_queue_bounded_in_bytes_refuses_before_acknowledging(telemetry_service):
    sources = FakeSources()
    sources.gate.clear()  # the worker waits on the backend, so the queue cannot drain
    small = [metric("cpu", float(i), HOUR_AGO + i) for i in range(2)]
    big = [metric("cpu", 9.0, HOUR_AGO + 9, message="x" * 1500)]
    async with telemetry_service(sources, telemetry_queue_max_bytes=3000) as (client, _):
        assert (await client.post("/telemetry/batch", json=small)).json()["accepted"] == 2

        refused = await client.post("/telemetry/batch", json=big)

        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        metrics = (await client.get("/telemetry/metrics")).json()
        assert (metrics["refused"], metrics["queue_capacity_bytes"]) == (1, 3000)
        assert 0 < metrics["queued_bytes"] <= 3000
        assert _invariant(metrics) == (2, 0, 2, 0)

        sources.gate.set()
        await wait_processed(client)
        assert (await client.post("/telemetry/batch", json=big)).json()["accepted"] == 1
        metrics = await wait_processed(client)
        assert _invariant(metrics) == (3, 3, 0, 0)
        assert metrics["queued_bytes"] == 0


async def test_shutting_down_refuses_with_503_before_reading_the_body(telemetry_service):
    async with telemetry_service() as (client, pipeline):
        pipeline.refuse_new()

        response = await _post(client, "/telemetry/batch", b"not even json", "application/json")

        assert (response.status_code, response.headers["retry-after"]) == (503, "5")
        assert response.headers["content-type"] == PROBLEM
        assert (await client.get("/telemetry/metrics")).json()["received"] == 0


async def test_deeply_nested_json_is_a_400_not_a_crash(telemetry_service):
    body = b"[" * 100_000 + b"]" * 100_000
    async with telemetry_service() as (client, _):
        response = await _post(client, "/telemetry/batch", body, "application/json")

        assert (response.status_code, response.json()["title"]) == (400, "Malformed JSON")


async def test_a_batch_larger_than_the_whole_queue_is_413_not_429(telemetry_service):
    items = [metric("cpu", float(i), HOUR_AGO + i) for i in range(3)]
    async with telemetry_service(telemetry_queue_max_items=2) as (client, _):
        response = await client.post("/telemetry/batch", json=items)

        assert (response.status_code, response.json()["detail"]) == (
            413,
            "3 points are more than the telemetry queue holds; send fewer at once.",
        )
        metrics = (await client.get("/telemetry/metrics")).json()
        assert (metrics["received"], metrics["refused"], metrics["accepted"]) == (3, 3, 0)
