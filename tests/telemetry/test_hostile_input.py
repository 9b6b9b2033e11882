"""Input a tester found to break the service: each is refused with a reason, nothing answers 500,
the read routes keep working, and the counters still add up."""

from __future__ import annotations

import time

from tests.telemetry.analysis_app import analysis_service
from tests.telemetry.conftest import FakeSources, metric, wait_processed

HOUR_AGO = int(time.time()) - 3600
SURROGATE = "must be valid Unicode (no lone surrogates)"
JSON = {"content-type": "application/json"}
BAD_STAMP = "timestamp: must be an ISO 8601 date-time or Unix seconds"

# Raw JSON, since a client library would refuse to encode most of these. One good point first.
HOSTILE_ITEMS = [
    f'{{"name": "cpu", "value": 1, "timestamp": {HOUR_AGO}}}',
    '{"name": "cpu", "value": 1, "timestamp": "nan"}',
    '{"name": "cpu", "value": 1, "timestamp": "inf"}',
    f'{{"name": "\\ud800", "value": 1, "timestamp": {HOUR_AGO}}}',
    f'{{"name": "cpu", "service": "\\udfff", "value": 1, "timestamp": {HOUR_AGO}}}',
    f'{{"name": "cpu", "value": 1, "timestamp": {HOUR_AGO}, "attributes": {{"\\ud800": 1}}}}',
    f'{{"type": "trace", "name": "GET", "duration_ms": 1, "trace_id": "\\ud800",'
    f' "timestamp": {HOUR_AGO}}}',
    f'{{"name": "cpu", "value": 1{"0" * 400}, "timestamp": {HOUR_AGO}}}',
    f'{{"type": [1], "name": "cpu", "value": 1, "timestamp": {HOUR_AGO}}}',
    f'{{"type": {{"a": 1}}, "name": "cpu", "value": 1, "timestamp": {HOUR_AGO}}}',
]
HOSTILE_REASONS = [
    {"index": 1, "reason": BAD_STAMP},
    {"index": 2, "reason": BAD_STAMP},
    {"index": 3, "reason": f"name: {SURROGATE}"},
    {"index": 4, "reason": f"service: {SURROGATE}"},
    {"index": 5, "reason": f"attributes: keys {SURROGATE}"},
    {"index": 6, "reason": f"trace_id: {SURROGATE}"},
    {"index": 7, "reason": "value: must be a finite number"},
    {"index": 8, "reason": "type: must be one of event, log, metric, trace"},
    {"index": 9, "reason": "type: must be one of event, log, metric, trace"},
]


def _balance(metrics: dict) -> tuple[int, int]:
    parts = ("accepted", "rejected", "duplicates", "refused")
    return metrics["received"], sum(metrics[part] for part in parts)


async def test_hostile_items_are_rejected_one_by_one_and_reads_keep_working(tmp_path):
    body = ("[" + ", ".join(HOSTILE_ITEMS) + "]").encode()
    async with analysis_service(tmp_path, FakeSources()) as service:
        client = service.client
        response = await client.post("/telemetry/batch", content=body, headers=JSON)

        assert response.status_code == 202
        assert response.json() == {"accepted": 1, "rejected": HOSTILE_REASONS, "duplicates": 0}
        metrics = await wait_processed(client)
        assert (metrics["received"], metrics["accepted"], metrics["rejected"]) == (10, 1, 9)
        assert _balance(metrics) == (10, 10)
        for path in ("/telemetry/analysis", "/telemetry/anomalies", "/telemetry/correlations"):
            assert (path, (await client.get(path)).status_code) == (path, 200)


async def test_control_characters_reject_their_point_alone(telemetry_service):
    control = "must not hold the control character U+{}".format
    items = [
        f'{{"name": "cpu", "value": 1, "timestamp": {HOUR_AGO}}}',
        f'{{"name": "cpu", "value": 1, "service": "\\u001b[31mapi", "timestamp": {HOUR_AGO}}}',
        f'{{"name": "cpu", "value": 1, "attributes": {{"k\\u0000": 1}}, "timestamp": {HOUR_AGO}}}',
        f'{{"type": "log", "name": "l", "message": "\\u007f", "timestamp": {HOUR_AGO}}}',
        f'{{"type": "log", "name": "l", "message": "a\\tb\\nc", "timestamp": {HOUR_AGO}}}',
    ]
    body = ("[" + ", ".join(items) + "]").encode()
    async with telemetry_service() as (client, _):
        response = await client.post("/telemetry/batch", content=body, headers=JSON)

        assert (response.status_code, response.json()) == (
            202,
            {
                "accepted": 2,
                "rejected": [
                    {"index": 1, "reason": f"service: {control('001B')}"},
                    {"index": 2, "reason": f"attributes: keys {control('0000')}"},
                    {"index": 3, "reason": f"message: {control('007F')}"},
                ],
                "duplicates": 0,
            },
        )
        metrics = await wait_processed(client)
        assert (metrics["received"], metrics["accepted"], metrics["rejected"]) == (5, 2, 3)


async def test_nan_is_not_an_instant_for_the_read_routes_either(tmp_path):
    async with analysis_service(tmp_path, FakeSources()) as service:
        response = await service.client.get("/telemetry/anomalies", params={"since": "nan"})

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "since", "message": "must be an ISO 8601 date-time or Unix seconds"}
    ]


async def test_bodies_json_cannot_represent_are_400_and_count_nothing(telemetry_service):
    deep = b"[" * 100_000 + b"]" * 100_000
    long_integer = f'[{{"name": "cpu", "value": {"9" * 5_000}}}]'.encode()
    # The details say it in plain words, not Python's ("maximum recursion depth exceeded",
    # "use sys.set_int_max_str_digits()").
    too_deep = "The request body is not valid JSON: it is nested too deeply."
    too_long = "The request body is not valid JSON: an integer has more than 4300 digits."
    async with telemetry_service() as (client, _):
        for path, body, content_type, detail in [
            ("/telemetry/batch", deep, "application/json", too_deep),
            ("/telemetry/batch", long_integer, "application/json", too_long),
            ("/telemetry", long_integer[1:-1], "application/json", too_long),
            (
                "/telemetry/batch",
                b"{}\n" + long_integer[1:-1] + b"\n",
                "application/x-ndjson",
                "Line 2 is not valid JSON: an integer has more than 4300 digits.",
            ),
            (
                "/telemetry/batch",
                b"[]\n" + deep,
                "application/x-ndjson",
                "Line 2 is not valid JSON: it is nested too deeply.",
            ),
            (
                "/telemetry/batch",
                b'[{"name": "cpu\xff"}]',
                "application/json",
                "The request body is not valid JSON: it is not valid UTF-8 (byte 14).",
            ),
        ]:
            response = await client.post(path, content=body, headers={"content-type": content_type})

            assert (response.status_code, response.json()["title"], response.json()["detail"]) == (
                400,
                "Malformed JSON",
                detail,
            )
        metrics = (await client.get("/telemetry/metrics")).json()
        assert _balance(metrics) == (0, 0)


async def test_a_resent_point_is_a_duplicate_but_a_different_one_is_not(telemetry_service):
    base = metric("cpu", 0.5, HOUR_AGO, host="web-1", attributes={"pod": "a"})
    others = [
        {**base, "host": "web-2"},
        {**base, "environment": "staging"},
        {**base, "attributes": {"pod": "b"}},
        {**base, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4737"},
        {**base, "severity": "error"},
    ]
    async with telemetry_service() as (client, _):
        first = await client.post("/telemetry/batch", json=[base, *others])
        again = await client.post("/telemetry/batch", json=[base, *others])

        assert first.json() == {"accepted": 6, "rejected": [], "duplicates": 0}
        assert again.json() == {"accepted": 0, "rejected": [], "duplicates": 6}
        metrics = await wait_processed(client)
        assert (metrics["accepted"], metrics["duplicates"], metrics["processed"]) == (6, 6, 6)


async def test_retry_after_before_the_worker_has_run_reflects_the_backlog(telemetry_service):
    sources = FakeSources()
    sources.gate.clear()  # the worker waits on the backend: no drain rate is measured yet
    first = [metric("cpu", float(i), HOUR_AGO - 10_000 + i) for i in range(5_000)]
    second = [metric("mem", float(i), HOUR_AGO - 10_000 + i) for i in range(3_000)]
    async with telemetry_service(sources, telemetry_queue_max_items=5_000) as (client, pipeline):
        assert (await client.post("/telemetry/batch", json=first)).json()["accepted"] == 5_000

        refused = await client.post("/telemetry/batch", json=second)

        # 3,000 points must drain first, at the assumed 1,000 points/s.
        assert (refused.status_code, refused.headers["retry-after"]) == (429, "3")
        assert pipeline.collector.drain_rate == 0.0
        sources.gate.set()
        metrics = await wait_processed(client)
        assert (metrics["accepted"], metrics["refused"], metrics["processed"]) == (
            5_000,
            3_000,
            5_000,
        )
