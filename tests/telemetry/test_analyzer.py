"""The analyzer through the API: event-time order, lateness, trends, series for charts."""

from __future__ import annotations

import csv
import math
import random
import statistics
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from telemetry.analyzer import Analyzer, AnalyzerConfig
from telemetry.detectors import SeriesDetector
from telemetry.points import iso, parse_instant, parse_point
from telemetry.processor import Processor
from telemetry.trends import Trend, trend
from tests.telemetry.analysis_app import analysis_service
from tests.telemetry.conftest import metric, wait_processed

NAB = Path(__file__).parents[1] / "data" / "nab"
SERIES = "ec2_request_latency_system_failure.csv"
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


def _nab_points() -> list[dict]:
    with (NAB / SERIES).open() as file:
        rows = list(csv.DictReader(file))
    return [
        metric(SERIES, float(row["value"]), row["timestamp"].replace(" ", "T") + "Z", service="nab")
        for row in rows
    ]


def _flags_of_the_detector_alone(points: list[dict]) -> list[tuple[str, float]]:
    detector = SeriesDetector()
    flags = []
    for point in sorted(points, key=lambda p: p["timestamp"]):
        ts = parse_instant(point["timestamp"].replace("Z", "+00:00"))
        if detector.observe(ts, point["value"])[0] is not None:
            flags.append((iso(ts), point["value"]))
    return flags


@pytest.fixture
def service(tmp_path):
    return lambda **overrides: analysis_service(tmp_path, **overrides)


@pytest.mark.parametrize("order", ["forward", "reversed", "shuffled"])
async def test_a_backfill_is_analysed_in_event_time_whatever_its_order(telemetry_service, order):
    points = _nab_points()
    sent = {"forward": points, "reversed": points[::-1]}.get(order)
    if sent is None:
        sent = random.Random(3).sample(points, len(points))
    async with telemetry_service() as (client, _):
        # Four requests, so that order across requests matters, not only within one.
        for start in range(0, len(sent), 1008):
            await client.post("/telemetry/batch", json=sorted(sent[start : start + 1008], key=_ts))
        metrics = await wait_processed(client)
        found = (await client.get("/telemetry/anomalies", params={"limit": 1000})).json()

    flags = [(item["timestamp"], item["value"]) for item in found["items"]]
    if order == "forward":
        assert flags == _flags_of_the_detector_alone(points)
        assert (metrics["analysed"], metrics["late"]) == (4032, 0)
    else:
        # Without lateness allowed, what arrives behind the series' analysed time is skipped.
        assert metrics["analysed"] + metrics["late"] == 4032
        assert metrics["late"] > 0


async def test_points_late_by_less_than_the_lateness_are_analysed_in_order(telemetry_service):
    points = _nab_points()
    # Each point is delayed by up to an hour, so requests overlap in event time by that much.
    rng = random.Random(3)
    arrival = sorted(points, key=lambda p: parse_instant(p["timestamp"]) + rng.uniform(0, 3600))
    async with telemetry_service(telemetry_lateness_seconds=3600) as (client, pipeline):
        for start in range(0, len(arrival), 48):
            await client.post("/telemetry/batch", json=arrival[start : start + 48])
            await wait_processed(client)
        metrics = await wait_processed(client)
        view = pipeline.analyzer.series(limit=1)[0]
        found = (await client.get("/telemetry/anomalies", params={"limit": 1000})).json()

    analysed_until = iso(view["last_timestamp"])
    alone = [flag for flag in _flags_of_the_detector_alone(points) if flag[0] <= analysed_until]
    assert (metrics["late"], metrics["analysed"] + view["held_points"]) == (0, 4032)
    assert metrics["reordered"] > 0
    assert [(item["timestamp"], item["value"]) for item in found["items"]] == alone


async def test_points_within_the_lateness_are_reordered_and_later_ones_skipped(service):
    def at(*offsets: int) -> list[dict]:
        return [metric("cpu", float(o), T0 + o, service="api") for o in offsets]

    async with service(telemetry_lateness_seconds=300) as app:
        client = app.client
        await client.post("/telemetry/batch", json=at(0, 60, 120, 240))
        await wait_processed(client)
        await client.post("/telemetry/batch", json=at(180, 600))  # 180 is out of order
        await wait_processed(client)
        await client.post("/telemetry/batch", json=at(100))  # behind what was analysed: late
        metrics = await wait_processed(client)
        series = (await client.get("/telemetry/series", params={"name": "cpu"})).json()
        view = (await client.get("/telemetry/analysis")).json()["series"][0]

    assert (metrics["analysed"], metrics["reordered"], metrics["late"]) == (5, 1, 1)
    assert (view["points"], view["late_points"], view["held_points"]) == (5, 1, 1)
    points = series["series"][0]["points"]
    assert [(p["start"], p["count"], p["mean"]) for p in points if p["count"]][:2] == [
        ("2023-11-14T22:13:20Z", 1, 0.0),
        (points[1]["start"], 1, 60.0),
    ]
    assert sum(p["count"] for p in points) == 5


async def test_the_reorder_buffer_is_bounded(service):
    points = [metric("cpu", 1.0, T0 + i, service="api") for i in range(10)]
    settings = {"telemetry_lateness_seconds": 3600, "telemetry_reorder_max_points": 4}
    async with service(**settings) as app:
        await app.client.post("/telemetry/batch", json=points)
        metrics = await wait_processed(app.client)
        view = (await app.client.get("/telemetry/analysis")).json()["series"][0]

    assert (metrics["analysed"], view["held_points"]) == (6, 4)


def test_theil_sen_and_mann_kendall_match_the_references():
    rng = np.random.default_rng(11)
    ts = np.arange(40, dtype=np.float64) * 60.0
    values = 0.02 * ts + rng.normal(0, 5, 40)
    values[7] = 500.0  # one outlier moves neither estimate much

    found = trend(ts, values, alpha=0.01)
    reference_slope = stats.theilslopes(values, ts).slope
    reference_tau = stats.kendalltau(ts, values).statistic

    assert found is not None
    assert found.direction == "rising"
    assert found.slope == pytest.approx(reference_slope, rel=1e-12)
    assert found.tau == pytest.approx(reference_tau, rel=1e-12)
    assert found.p_value < 1e-6


def test_mann_kendall_p_value_of_a_strictly_rising_series():
    # n = 10, S = 45, Var(S) = 125, z = (45 - 1) / sqrt(125) = 3.9355; two-sided p = 8.30e-5.
    found = trend(np.arange(10.0), np.arange(10.0) * 2, alpha=0.01)
    assert found is not None
    assert found.p_value == pytest.approx(8.30e-5, rel=1e-3)
    assert (found.slope, found.tau) == (2.0, 1.0)


def _textbook_trend(ts: list[float], values: list[float], alpha: float) -> Trend:
    """Mann–Kendall with its tie correction and the Theil–Sen slope, pair by pair."""
    n = len(values)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    s = sum((values[j] > values[i]) - (values[j] < values[i]) for i, j in pairs)
    ties = sum(t * (t - 1) * (2 * t + 5) for t in Counter(values).values())
    variance = (n * (n - 1) * (2 * n + 5) - ties) / 18
    p_value = 1.0
    if s and variance > 0:
        p_value = math.erfc(abs((s - math.copysign(1, s)) / math.sqrt(variance)) / math.sqrt(2))
    slopes = [(values[j] - values[i]) / (ts[j] - ts[i]) for i, j in pairs if ts[j] > ts[i]]
    slope = statistics.median(slopes) if slopes else 0.0
    direction = "flat"
    if p_value <= alpha and slope != 0:
        direction = "rising" if slope > 0 else "falling"
    return Trend(direction, slope, s / len(pairs), p_value, n)


def _windows() -> dict[str, tuple[list[float], list[float]]]:
    rng = random.Random(17)
    minutes = [60.0 * i for i in range(64)]
    return {
        "noise on a slope": (minutes, [0.01 * t + rng.gauss(0, 3) for t in minutes]),
        "counts, many ties": (minutes, [float(rng.randint(0, 3)) for _ in minutes]),
        "constant": (minutes, [7.5] * 64),
        "repeated timestamps": (
            [60.0 * (i // 3) for i in range(64)],
            [rng.uniform(0, 1) + i * 0.05 for i in range(64)],
        ),
        "one instant": ([5.0] * 20, [rng.uniform(0, 1) for _ in range(20)]),
        "ten points, odd pair count": (minutes[:10], [3.0, 1, 4, 1, 5, 9, 2, 6, 5, 3]),
        "spikes on a level": (minutes, [100.0 if i % 9 == 0 else 1.0 + i / 64 for i in range(64)]),
    }


@pytest.mark.parametrize("name", list(_windows()))
def test_trend_is_exactly_the_textbook_computation(name):
    ts, values = _windows()[name]

    found = trend(np.array(ts), np.array(values), alpha=0.01)

    assert found == _textbook_trend(ts, values, alpha=0.01)


def test_no_trend_in_noise_or_with_too_few_points():
    rng = np.random.default_rng(5)
    flat = trend(np.arange(64.0), rng.normal(10, 1, 64), alpha=0.01)
    assert flat is not None and flat.direction == "flat"
    assert trend(np.arange(5.0), np.arange(5.0), alpha=0.01) is None


async def test_a_rising_series_reports_one_trend_with_its_p_value(service):
    rng = random.Random(2)
    flat = [metric("mem", 100 + rng.uniform(-2, 2), T0 + 60 * i, service="api") for i in range(64)]
    rising = [
        metric("mem", 100 + 0.5 * i + rng.uniform(-2, 2), T0 + 60 * (64 + i), service="api")
        for i in range(64)
    ]
    async with service(telemetry_trend_window=32) as app:
        await app.client.post("/telemetry/batch", json=flat)
        await wait_processed(app.client)
        quiet = (await app.client.get("/telemetry/analysis")).json()
        await app.client.post("/telemetry/batch", json=rising)
        await wait_processed(app.client)
        analysis = (await app.client.get("/telemetry/analysis")).json()

    assert quiet["trends"] == []
    assert [t["direction"] for t in analysis["trends"]] == ["rising"]
    found = analysis["trends"][0]
    assert found["p_value"] < 0.01
    assert found["slope_per_second"] == pytest.approx(0.5 / 60, rel=0.3)
    assert analysis["series"][0]["trend"] == "rising"


async def test_series_are_downsampled_for_charts(service):
    points = [metric("rps", float(i), T0 + 60 * i, service="api") for i in range(100)]
    points += [metric("rps", 1.0, T0, service="web")]
    async with service() as app:
        client = app.client
        await client.post("/telemetry/batch", json=points)
        await wait_processed(client)
        ten = (
            await client.get(
                "/telemetry/series", params={"service": "api", "name": "rps", "buckets": 10}
            )
        ).json()
        stepped = (
            await client.get(
                "/telemetry/series",
                params={
                    "service": "api",
                    "name": "rps",
                    "step": 1200,
                    "since": iso(T0 + 600),
                    "until": iso(T0 + 60 * 99),
                },
            )
        ).json()
        both = (await client.get("/telemetry/series", params={"name": "rps"})).json()
        missing = await client.get("/telemetry/series")

    buckets = ten["series"][0]["points"]
    assert [(b["count"], b["min"], b["max"]) for b in buckets] == [
        (10, 10.0 * k, 10.0 * k + 9) for k in range(10)
    ]
    assert [b["mean"] for b in buckets] == [10.0 * k + 4.5 for k in range(10)]
    assert buckets[0]["start"] == "2023-11-14T22:13:20Z"
    stepped_points = stepped["series"][0]["points"]
    # Buckets of whole steps fall on multiples of 1200 s: the first starts before `since`.
    assert [(b["count"], b["min"]) for b in stepped_points] == [
        (17, 10.0),
        (20, 27.0),
        (20, 47.0),
        (20, 67.0),
        (13, 87.0),
    ]
    assert all(
        math.isclose(parse_instant(b["start"].replace("Z", "+00:00")) % 1200, 0)
        for b in stepped_points
    )
    assert sorted(s["service"] for s in both["series"]) == ["api", "web"]
    assert missing.status_code == 422


def _ts(point: dict) -> str:
    return point["timestamp"]


def test_held_points_of_a_quiet_series_are_released_after_the_lateness():
    wall = [1000.0]
    analyzer = Analyzer(config=AnalyzerConfig(lateness_seconds=300), clock=lambda: wall[0])
    processor = Processor(100, 100)

    def send(name: str, *offsets: int) -> None:
        raw = [metric(name, float(o), T0 + o, service="api") for o in offsets]
        analyzer.analyze(processor.process([parse_point(item, T0 + 600)[0] for item in raw]))

    send("cpu", 0, 60, 120)
    held_at_first = analyzer.series()[0]["held_points"]
    wall[0] += 299
    send("mem", 0)  # another series' batch: cpu has been quiet for less than the lateness
    still_held = analyzer.counters["analysed"]
    wall[0] += 1
    send("mem", 60)

    cpu = next(view for view in analyzer.series() if view["name"] == "cpu")
    assert (held_at_first, still_held) == (3, 0)
    assert (cpu["points"], cpu["held_points"], cpu["last_value"]) == (3, 0, 120.0)


def test_a_series_whose_values_outgrow_floating_point_fails_alone():
    analyzer = Analyzer()
    processor = Processor(100, 100)
    # Swings near the largest float drive a detector's level to inf - inf, a NaN that its
    # pattern memory cannot place; before, every later batch with this series failed.
    huge = [1e308 if n % 2 else -1e308 for n in range(30)] + [5.0] * 20
    for start in range(0, len(huge), 10):
        raw = [
            item
            for n in range(start, start + 10)
            for item in (
                metric("huge", huge[n], T0 + n, service="api"),
                metric("calm", float(n % 3), T0 + n, service="api"),
            )
        ]
        analyzer.analyze(processor.process([parse_point(item, T0 + 900)[0] for item in raw]))

    views = {view["name"]: view for view in analyzer.series()}
    # The three huge batches each leave the level overflowed: three fresh starts.
    assert analyzer.counters["detector_restarts"] == 3
    assert (views["huge"]["points"], views["calm"]["points"]) == (50, 50)
    assert (views["huge"]["mean"], views["huge"]["std"]) == (5.0, 0.0)
    assert views["calm"]["last_value"] == 1.0
