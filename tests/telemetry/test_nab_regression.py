"""A fast NAB subset through the API: detection must not get worse than it is today.

Seven labelled series (tests/data/nab/README.md) are streamed through `POST /telemetry/batch` with
the default settings, read back from `GET /telemetry/anomalies` and scored with NAB's rules. The
floors sit just under the current scores on this subset: standard 77.9, reward-low-FP 76.2,
reward-low-FN 80.1. Without the pattern memory (its weight at 1) the regular spikes of
`art_increase_spike_density` alone raise 18 false alarms and the subset scores 71.0 / 62.0 / 75.6.
"""

from __future__ import annotations

from pathlib import Path

from bench.nab import SERVICE, instant, load, points_of, score
from bench.nab_scoring import PROFILES, score_series
from tests.telemetry.conftest import wait_processed

NAB = Path(__file__).parents[1] / "data" / "nab"
FLOORS = {"standard": 77.0, "reward_low_fp": 75.0, "reward_low_fn": 79.0}


async def test_nab_subset_scores_stay_above_their_floors(telemetry_service):
    found = load(NAB, NAB / "windows.json")
    async with telemetry_service() as (client, _):
        for series in found:
            response = await client.post("/telemetry/batch", json=points_of(series))
            assert response.status_code == 202
        metrics = await wait_processed(client, deadline=60.0)
        for series in found:
            params = {"service": SERVICE, "name": series.name, "limit": 10_000}
            items = (await client.get("/telemetry/anomalies", params=params)).json()["items"]
            series.flags = [instant(item["timestamp"]) for item in items]

    total = sum(len(series.stamps) for series in found)
    assert (metrics["processed"], metrics["analysed"], metrics["late"]) == (total, total, 0)

    overall = score(found)["overall"]
    assert {name: overall[name] >= floor for name, floor in FLOORS.items()} == dict.fromkeys(
        FLOORS, True
    ), overall

    standard = [score_series(s.stamps, s.windows, s.flags, PROFILES[0]) for s in found]
    assert sum(item.windows for item in standard) == 13
    assert sum(item.detected for item in standard) >= 11
