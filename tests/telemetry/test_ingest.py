"""Posting points: validation, per-item rejection, duplicates, backpressure and rate limits."""

from __future__ import annotations

import asyncio
import time

import pytest

from service.problems import Problem
from tests.telemetry.conftest import FakeSources, metric, wait_processed

PROBLEM = "application/problem+json"
HOUR_AGO = int(time.time()) - 3600


def _counters(metrics: dict) -> dict:
    names = ("received", "accepted", "rejected", "duplicates", "processed", "queued", "dropped")
    return {name: metrics[name] for name in names}


async def test_single_point_is_accepted_and_processed(telemetry_service):
    async with telemetry_service() as (client, _):
        response = await client.post("/telemetry", json=metric("cpu", 0.5, HOUR_AGO))

        assert response.status_code == 202
        assert response.json() == {"accepted": 1, "rejected": [], "duplicates": 0}
        metrics = await wait_processed(client)
        assert _counters(metrics) == {
            "received": 1,
            "accepted": 1,
            "rejected": 0,
            "duplicates": 0,
            "processed": 1,
            "queued": 0,
            "dropped": 0,
        }


async def test_a_single_point_sent_again_is_a_duplicate(telemetry_service):
    async with telemetry_service() as (client, _):
        point = metric("cpu", 0.5, HOUR_AGO)
        first = await client.post("/telemetry", json=point)
        again = await client.post("/telemetry", json=point)

        assert first.json() == {"accepted": 1, "rejected": [], "duplicates": 0}
        assert again.json() == {"accepted": 0, "rejected": [], "duplicates": 1}
        metrics = await wait_processed(client)
        assert _counters(metrics) == {
            "received": 2,
            "accepted": 1,
            "rejected": 0,
            "duplicates": 1,
            "processed": 1,
            "queued": 0,
            "dropped": 0,
        }


async def test_malformed_json_is_a_400_problem(telemetry_service):
    async with telemetry_service() as (client, _):
        response = await client.post(
            "/telemetry/batch",
            content=b'[{"name": "cpu",',
            headers={"content-type": "application/json"},
        )

        assert response.status_code == 400
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["title"] == "Malformed JSON"


async def test_non_finite_item_is_rejected_by_index_and_the_rest_accepted(telemetry_service):
    body = (
        f'[{{"name": "cpu", "value": 1.0, "timestamp": {HOUR_AGO}}},'
        f' {{"name": "cpu", "value": NaN, "timestamp": {HOUR_AGO + 1}}},'
        f' {{"name": "cpu", "value": -Infinity, "timestamp": {HOUR_AGO + 2}}},'
        f' {{"name": "cpu", "value": 3.0, "timestamp": {HOUR_AGO + 3}}}]'
    )
    async with telemetry_service() as (client, _):
        response = await client.post(
            "/telemetry/batch", content=body, headers={"content-type": "application/json"}
        )

        assert response.status_code == 202
        assert response.json() == {
            "accepted": 2,
            "rejected": [
                {"index": 1, "reason": "value: must be a finite number"},
                {"index": 2, "reason": "value: must be a finite number"},
            ],
            "duplicates": 0,
        }
        metrics = await wait_processed(client)
        assert (metrics["accepted"], metrics["rejected"], metrics["processed"]) == (2, 2, 2)


async def test_metric_without_value_is_422_with_field_error(telemetry_service):
    async with telemetry_service() as (client, _):
        response = await client.post("/telemetry", json={"name": "cpu", "timestamp": HOUR_AGO})

        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["errors"] == [
            {"field": "value", "message": "is required for metrics"}
        ]


async def test_future_timestamp_is_rejected_by_index(telemetry_service):
    in_an_hour = time.time() + 3600
    items = [metric("cpu", 1.0, HOUR_AGO), metric("cpu", 2.0, in_an_hour)]
    async with telemetry_service() as (client, _):
        response = await client.post("/telemetry/batch", json={"items": items})

        assert response.status_code == 202
        assert response.json() == {
            "accepted": 1,
            "rejected": [
                {"index": 1, "reason": "timestamp: is more than 600 seconds in the future"}
            ],
            "duplicates": 0,
        }


async def test_old_points_pass_unless_a_max_age_is_set(telemetry_service):
    items = [metric("cpu", 1.0, "2011-07-01T00:00:00Z"), metric("cpu", 2.0, HOUR_AGO)]
    async with telemetry_service() as (client, _):
        response = await client.post("/telemetry/batch", json=items)
        assert response.json()["accepted"] == 2

    async with telemetry_service(telemetry_max_age_seconds=86_400) as (client, _):
        response = await client.post("/telemetry/batch", json=items)
        assert response.json() == {
            "accepted": 1,
            "rejected": [
                {"index": 0, "reason": "timestamp: is more than 86400 seconds in the past"}
            ],
            "duplicates": 0,
        }


async def test_oversize_batch_is_413_and_nothing_counted(telemetry_service):
    items = [metric("cpu", float(i), HOUR_AGO + i) for i in range(6)]
    async with telemetry_service(telemetry_batch_max_items=5) as (client, _):
        response = await client.post("/telemetry/batch", json=items)

        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["detail"] == "A batch holds at most 5 points; this one has 6."
        assert (await client.get("/telemetry/metrics")).json()["received"] == 0


async def test_full_queue_refuses_the_whole_request_with_retry_after(telemetry_service):
    sources = FakeSources()
    sources.gate.clear()  # the worker waits on the backend, so the queue cannot drain
    first = [metric("cpu", float(i), HOUR_AGO + i) for i in range(4)]
    second = [metric("cpu", float(i), HOUR_AGO + i) for i in range(4, 6)]
    async with telemetry_service(sources, telemetry_queue_max_items=5) as (client, _):
        assert (await client.post("/telemetry/batch", json=first)).json()["accepted"] == 4

        refused = await client.post("/telemetry/batch", json=second)

        assert refused.status_code == 429
        assert refused.headers["content-type"] == PROBLEM
        assert int(refused.headers["retry-after"]) >= 1
        metrics = (await client.get("/telemetry/metrics")).json()
        assert _counters(metrics) == {
            "received": 6,
            "accepted": 4,
            "rejected": 0,
            "duplicates": 0,
            "processed": 0,
            "queued": 4,
            "dropped": 0,
        }
        assert metrics["refused"] == 2

        sources.gate.set()
        await wait_processed(client)
        retried = await client.post("/telemetry/batch", json=second)

        assert retried.json() == {"accepted": 2, "rejected": [], "duplicates": 0}
        metrics = await wait_processed(client)
        assert (metrics["accepted"], metrics["processed"], metrics["queued"]) == (6, 6, 0)
        assert metrics["dropped"] == 0


async def test_rate_limit_per_client_is_429(telemetry_service):
    items = [metric("cpu", float(i), HOUR_AGO + i) for i in range(3)]
    async with telemetry_service(telemetry_rate_limit="5/minute") as (client, _):
        assert (await client.post("/telemetry/batch", json=items)).status_code == 202

        limited = await client.post("/telemetry/batch", json=items)

        assert limited.status_code == 429
        assert limited.headers["content-type"] == PROBLEM
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        metrics = (await client.get("/telemetry/metrics")).json()
        assert (metrics["accepted"], metrics["rate_limited"], metrics["refused"]) == (3, 3, 3)


async def test_a_bad_single_point_is_a_422_and_spends_no_rate(telemetry_service):
    async with telemetry_service(telemetry_rate_limit="2/hour") as (client, _):
        statuses = [
            (await client.post("/telemetry", json=point)).status_code
            for point in (
                metric("cpu", 1.0, HOUR_AGO),
                {"name": "cpu", "value": "fast"},
                metric("cpu", 2.0, HOUR_AGO + 1),
                {"name": "cpu", "value": "fast"},
                metric("cpu", 3.0, HOUR_AGO + 2),
            )
        ]

        assert statuses == [202, 422, 202, 422, 429]
        metrics = (await client.get("/telemetry/metrics")).json()
        assert (metrics["accepted"], metrics["rejected"], metrics["rate_limited"]) == (2, 2, 1)


async def test_shutting_down_is_a_503_even_for_a_sender_over_its_rate(telemetry_service):
    items = [metric("cpu", float(i), HOUR_AGO + i) for i in range(2)]
    async with telemetry_service(telemetry_rate_limit="2/minute") as (client, pipeline):
        assert (await client.post("/telemetry/batch", json=items)).status_code == 202
        pipeline.refuse_new()  # as when SIGTERM arrives while this sender's body is read

        with pytest.raises(Problem) as refused:
            await pipeline.submit(items, "127.0.0.1")

        assert refused.value.status == 503
        counters = pipeline.collector.counters
        assert (counters["received"], counters["refused"], counters["rate_limited"]) == (4, 2, 0)


async def test_a_batch_larger_than_the_rate_limit_is_413_not_a_retry_forever(telemetry_service):
    items = [metric("cpu", float(i), HOUR_AGO + i) for i in range(6)]
    async with telemetry_service(telemetry_rate_limit="5/minute") as (client, _):
        refused = await client.post("/telemetry/batch", json=items)

        assert refused.status_code == 413
        assert refused.headers["content-type"] == PROBLEM
        assert "retry-after" not in refused.headers
        assert refused.json()["detail"] == (
            "6 points are more than the rate limit of 5/minute points allows at once; send fewer."
        )
        metrics = (await client.get("/telemetry/metrics")).json()
        assert (metrics["received"], metrics["rate_limited"], metrics["refused"]) == (6, 6, 6)
        # The limit itself is untouched: five points still pass.
        accepted = await client.post("/telemetry/batch", json=items[:5])
        assert accepted.json() == {"accepted": 5, "rejected": [], "duplicates": 0}


async def test_resent_batch_is_reported_as_duplicates_and_not_double_counted(telemetry_service):
    items = [metric("cpu", float(i), HOUR_AGO + i, service="api") for i in range(10)]
    items.append({"type": "trace", "name": "GET /", "span_id": "s1", "timestamp": HOUR_AGO})
    async with telemetry_service() as (client, _):
        first = await client.post("/telemetry/batch", json=items)
        again = await client.post("/telemetry/batch", json=items)

        assert first.json() == {"accepted": 11, "rejected": [], "duplicates": 0}
        assert again.json() == {"accepted": 0, "rejected": [], "duplicates": 11}
        metrics = await wait_processed(client)
        assert _counters(metrics) == {
            "received": 22,
            "accepted": 11,
            "rejected": 0,
            "duplicates": 11,
            "processed": 11,
            "queued": 0,
            "dropped": 0,
        }
        analysis = (await client.get("/telemetry/analysis")).json()
        cpu = [series for series in analysis["series"] if series["name"] == "cpu"]
        assert cpu[0]["points"] == 10


async def test_accepts_in_progress_go_before_the_next_batch(telemetry_service):
    backlog = [metric("cpu", float(i), HOUR_AGO + i) for i in range(2_000)]
    settings = {"telemetry_worker_batch_size": 100, "telemetry_accept_priority_seconds": 5.0}
    async with telemetry_service(**settings) as (client, pipeline):
        await pipeline.submit(backlog, "127.0.0.1")

        with pipeline.accepting():
            # Reading a body, admitting it and answering take several turns of the event loop;
            # without the priority the worker would take a batch at each of them.
            for _ in range(20):
                await asyncio.sleep(0)
            batches_during_accept = pipeline.counters["batches"]

        assert batches_during_accept == 0
        metrics = await wait_processed(client)
        assert (metrics["processed"], metrics["batches"]) == (2_000, 20)


async def test_an_accept_that_never_ends_delays_the_analysis_only_boundedly(telemetry_service):
    backlog = [metric("cpu", float(i), HOUR_AGO + i) for i in range(500)]
    settings = {"telemetry_worker_batch_size": 100, "telemetry_accept_priority_seconds": 0.01}
    async with telemetry_service(**settings) as (client, pipeline):
        await pipeline.submit(backlog, "127.0.0.1")

        with pipeline.accepting():  # a client sending its body very slowly
            metrics = await wait_processed(client)

        assert (metrics["processed"], metrics["queued"], metrics["batches"]) == (500, 0, 5)


async def test_an_accept_older_than_the_patience_holds_back_no_batch(telemetry_service):
    backlog = [metric("cpu", float(i), HOUR_AGO + i) for i in range(2_000)]
    settings = {"telemetry_worker_batch_size": 100, "telemetry_accept_priority_seconds": 1.0}
    async with telemetry_service(**settings) as (client, pipeline):
        with pipeline.accepting():  # a client that has been sending its body for over a second
            await asyncio.sleep(1.05)
            await pipeline.submit(backlog, "127.0.0.1")

            # Were it still waited for, the 20 batches would take 20 s of patience.
            metrics = await wait_processed(client, deadline=5.0)

        assert (metrics["processed"], metrics["queued"], metrics["batches"]) == (2_000, 0, 20)


async def test_stop_drains_the_queue_and_refuses_new_points(telemetry_service):
    items = [metric("cpu", float(i), HOUR_AGO + i) for i in range(50)]
    async with telemetry_service() as (client, pipeline):
        await client.post("/telemetry/batch", json=items)

        left = await pipeline.stop(drain_timeout=5.0)

        assert left == 0
        assert pipeline.ready is False
        assert await pipeline.stop() == 0  # idempotent
        refused = await client.post("/telemetry", json=metric("cpu", 1.0, HOUR_AGO + 99))
        assert refused.status_code == 503
        assert pipeline.metrics()["processed"] == 50
