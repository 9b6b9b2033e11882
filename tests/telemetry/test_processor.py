"""Canonical units, non-finite values set aside with a reason, bounded cardinality."""

from __future__ import annotations

import pytest

from telemetry.cardinality import OVERFLOW_ATTRIBUTES, OVERFLOW_SERIES, CardinalityLimit
from telemetry.points import parse_point
from telemetry.processor import Processor
from tests.telemetry.analysis_app import analysis_service
from tests.telemetry.conftest import metric, wait_processed

T0 = 1_700_000_000


@pytest.fixture
def service_app(tmp_path):
    return lambda **overrides: analysis_service(tmp_path, **overrides)


def _points(*raw: dict) -> list[dict]:
    parsed = []
    for item in raw:
        point, errors = parse_point(item, now=T0)
        assert errors == []
        parsed.append(point)
    return parsed


def test_units_become_milliseconds_and_bytes():
    points = _points(
        metric("latency", 1.5, T0, unit="s"),
        metric("latency", 250.0, T0, unit="us"),
        metric("heap", 2.0, T0, unit="MiB"),
        metric("disk", 3.0, T0, unit="kB"),
        metric("load", 0.7, T0, unit="1"),
        {"type": "trace", "name": "GET /", "duration_ms": 12.0, "timestamp": T0, "unit": "s"},
    )
    batch = Processor(100, 100).process(points)

    assert [(p["value"], p["unit"]) for p in batch.points] == [
        (1500.0, "ms"),
        (0.25, "ms"),
        (2_097_152.0, "By"),
        (3000.0, "By"),
        (0.7, "1"),
        (None, "s"),  # a span's duration is already in milliseconds: nothing to convert
    ]
    assert batch.values.tolist() == [1500.0, 0.25, 2_097_152.0, 3000.0, 0.7, 12.0]


def test_non_finite_values_are_set_aside_with_a_reason():
    points = _points(metric("size", 1e300, T0, unit="TB"), metric("size", 5.0, T0 + 1))
    points.append({**points[1], "value": float("nan"), "ts": T0 + 2})
    processor = Processor(100, 100)
    batch = processor.process(points)

    assert [p["value"] for p in batch.points] == [5.0]
    assert processor.counters["non_finite"] == 2
    assert [r["reason"] for r in processor.rejections] == [
        "value: must be a finite number, got inf",
        "value: must be a finite number, got nan",
    ]


def test_series_past_the_bound_share_one_overflow_series():
    limit = CardinalityLimit(max_series=2, max_values_per_key=10)
    keys = [("api", "cpu", (("host", f"h{i}"),)) for i in range(4)]

    assert [limit.admit(key) for key in keys] == [
        keys[0],
        keys[1],
        OVERFLOW_SERIES,
        OVERFLOW_SERIES,
    ]
    assert limit.admit(keys[1]) == keys[1]
    assert limit.overflow_points == 2


def test_attribute_values_past_the_bound_go_to_the_metric_overflow_series():
    limit = CardinalityLimit(max_series=100, max_values_per_key=2)
    users = [("api", "requests", (("user", f"u{i}"),)) for i in range(3)]

    admitted = [limit.admit(key) for key in users]
    other_metric = limit.admit(("api", "errors", (("user", "u9"),)))

    assert admitted == [users[0], users[1], ("api", "requests", OVERFLOW_ATTRIBUTES)]
    assert other_metric == ("api", "errors", (("user", "u9"),))
    assert len(limit) == 4


async def test_cardinality_bound_through_the_api(telemetry_service):
    points = [
        metric("requests", 1.0, T0 + i, service="api", attributes={"user": f"u{i}"})
        for i in range(10)
    ]
    settings = {"telemetry_max_series": 100, "telemetry_max_attribute_values": 3}
    async with telemetry_service(**settings) as (client, _):
        await client.post("/telemetry/batch", json=points)
        metrics = await wait_processed(client)
        series = (await client.get("/telemetry/analysis")).json()["series"]

    by_attributes = sorted(
        (json_key(s["attributes"]), s["points"]) for s in series if s["name"] == "requests"
    )
    assert by_attributes == [
        ("otel.metric.overflow=True", 7),
        ("user=u0", 1),
        ("user=u1", 1),
        ("user=u2", 1),
    ]
    assert (metrics["overflow_points"], metrics["series_tracked"]) == (7, 4)


def json_key(attributes: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(attributes.items()))


async def test_points_set_aside_after_acknowledgement_are_listed_with_the_reason(service_app):
    async with service_app() as app:
        pipeline = app.pipeline
        # An OTLP double can be NaN; here the unit conversion overflows instead.
        await app.client.post("/telemetry", json=metric("disk", 1e300, T0, unit="TB"))
        metrics = await wait_processed(app.client)
        rejections = (await app.client.get("/telemetry/rejections")).json()

    assert (metrics["accepted"], metrics["processed"], metrics["non_finite"]) == (1, 1, 1)
    assert rejections == {
        "count": 1,
        "items": [
            {
                "service": "unknown",
                "name": "disk",
                "timestamp": "2023-11-14T22:13:20Z",
                "reason": "value: must be a finite number, got inf",
            }
        ],
    }
    assert pipeline.analyzer.series_count == 0
