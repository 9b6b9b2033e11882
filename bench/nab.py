"""The Numenta Anomaly Benchmark through the service's real API.

Starts the middleware (`python main.py`, embedded backend, free loopback port) or uses a running
one (`--url`), streams every series of the data folder through `POST /telemetry/batch` in time
order (service `nab`, the file's name as the metric), waits until `/telemetry/metrics` shows every
point processed, reads the flags back from `GET /telemetry/anomalies` and scores them with NAB's
rules (bench/nab_scoring.py). `--plot` draws one series with its windows and the service's flags.

    python -m bench.nab [--data ../shared/nab/data] [--url http://127.0.0.1:8000] [--plot PNG]

The service it starts gets a fresh admin key; a running one (`--url`) needs a key with the
telemetry scopes in `--api-key` or OBSERVER_API_KEY.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.nab_scoring import PROFILES, normalised, probation_rows, score_series

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "nab" / "data"
SERVICE = "nab"
BATCH_POINTS = 5_000
PAGE = 10_000
PLOT_SERIES = "realKnownCause/machine_temperature_system_failure.csv"

# Standard-profile scores on all 58 NAB series, as the data's README quotes them.
PUBLISHED = {
    "perfect": 100.0,
    "ARTime": 74.9,
    "Numenta HTM": 70.0,
    "CAD OSE": 69.9,
    "earthgecko Skyline": 58.2,
    "KNN CAD": 58.0,
    "Relative Entropy": 54.6,
    "Random Cut Forest": 51.7,
    "Twitter ADVec": 47.1,
    "Windowed Gaussian": 39.6,
    "Etsy Skyline": 35.7,
    "never flagging": 0.0,
}


@dataclass(slots=True)
class Series:
    path: str  # "<category>/<name>.csv"
    stamps: list[float]
    values: list[float]
    windows: list[tuple[float, float]]
    flags: list[float]

    @property
    def category(self) -> str:
        return self.path.split("/")[0]

    @property
    def name(self) -> str:
        return self.path.split("/")[-1]


def load(data: Path, windows_file: Path) -> list[Series]:
    """Every labelled series of the folder, in the windows file's order."""
    labelled = json.loads(windows_file.read_text())
    found = []
    for path in sorted(labelled):
        file = data / path
        if not file.exists():
            continue
        with file.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        stamps = [instant(row["timestamp"]) for row in rows]
        values = [float(row["value"]) for row in rows]
        windows = [(instant(start), instant(end)) for start, end in labelled[path]]
        found.append(Series(path, stamps, values, windows, []))
    return found


def points_of(series: Series) -> list[dict]:
    """The series as telemetry points: service `nab`, the file's name as the metric."""
    return [
        {"type": "metric", "service": SERVICE, "name": series.name, "value": value, "timestamp": ts}
        for ts, value in zip(series.stamps, series.values, strict=True)
    ]


def stream(client: httpx.Client, series: Series) -> None:
    """Post one series in time order, waiting out backpressure when the service asks."""
    points = points_of(series)
    for start in range(0, len(points), BATCH_POINTS):
        _post(client, points[start : start + BATCH_POINTS])


def wait_processed(client: httpx.Client, expected: int, deadline: float = 600.0) -> dict:
    give_up = time.monotonic() + deadline
    while True:
        metrics = client.get("/telemetry/metrics").json()
        if metrics["accepted"] >= expected and metrics["processed"] >= metrics["accepted"]:
            return metrics
        if time.monotonic() > give_up:
            raise TimeoutError(f"the service processed {metrics['processed']} of {expected}")
        time.sleep(0.2)


def read_flags(client: httpx.Client, series: Series) -> list[float]:
    """Every flag of one series, page by page in time order."""
    flags: list[float] = []
    since: float | None = None
    while True:
        params: dict[str, str | int] = {"service": SERVICE, "name": series.name, "limit": PAGE}
        if since is not None:
            params["since"] = str(since)
        response = client.get("/telemetry/anomalies", params=params)
        response.raise_for_status()
        page = [instant(item["timestamp"]) for item in response.json()["items"]]
        flags.extend(ts for ts in page if since is None or ts > since)
        if len(page) < PAGE:
            return flags
        since = page[-1]


def score(found: list[Series]) -> dict[str, dict[str, float]]:
    """Per category and overall: each profile's normalised score, windows hit, false alarms."""
    groups: dict[str, list[Series]] = {"overall": found}
    for series in found:
        groups.setdefault(series.category, []).append(series)

    table: dict[str, dict[str, float]] = {}
    for group, members in groups.items():
        row: dict[str, float] = {}
        for profile in PROFILES:
            scores = [score_series(s.stamps, s.windows, s.flags, profile) for s in members]
            windows = sum(item.windows for item in scores)
            raw = sum(item.raw for item in scores)
            # A category without windows has no normalised score, only its false alarms.
            row[profile.name] = normalised(raw, windows, profile) if windows else math.nan
        row["windows"] = windows
        row["detected"] = sum(item.detected for item in scores)
        row["false_positives"] = sum(item.false_positives for item in scores)
        table[group] = row
    return table


def report(table: dict[str, dict[str, float]]) -> str:
    names = [profile.name for profile in PROFILES]
    lines = [f"{'':24}" + "".join(f"{name:>15}" for name in names) + "   detected  false pos."]
    for group in sorted(table, key=lambda name: (name == "overall", name)):
        row = table[group]
        scores = "".join(
            f"{'n/a':>15}" if math.isnan(row[name]) else f"{row[name]:15.1f}" for name in names
        )
        hits = f"{int(row['detected'])}/{int(row['windows'])}"
        lines.append(f"{group:24}{scores}{hits:>11}{int(row['false_positives']):12d}")
    lines += ["", "Published standard-profile scores (all 58 series):"]
    lines += [f"  {name:22}{value:6.1f}" for name, value in PUBLISHED.items()]
    return "\n".join(lines)


def plot(series: Series, path: Path) -> None:
    """One series with its labelled windows shaded and the service's flags marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    moments = [datetime.fromtimestamp(ts, UTC) for ts in series.stamps]
    by_stamp = dict(zip(series.stamps, series.values, strict=True))
    figure, axes = plt.subplots(figsize=(12, 3.6))
    axes.plot(moments, series.values, linewidth=0.6, color="#1f5fa8", label="value")
    for index, (start, end) in enumerate(series.windows):
        axes.axvspan(
            datetime.fromtimestamp(start, UTC),
            datetime.fromtimestamp(end, UTC),
            color="#e4572e",
            alpha=0.18,
            label="labelled window" if index == 0 else None,
        )
    probation = series.stamps[probation_rows(len(series.stamps))]
    axes.axvline(
        datetime.fromtimestamp(probation, UTC),
        color="#555555",
        linestyle="--",
        linewidth=0.8,
        label="end of probation (flags before it are not scored)",
    )
    flagged = [ts for ts in series.flags if ts in by_stamp]
    axes.scatter(
        [datetime.fromtimestamp(ts, UTC) for ts in flagged],
        [by_stamp[ts] for ts in flagged],
        color="#c0142b",
        marker="v",
        s=46,
        zorder=3,
        label="service's flag",
    )
    axes.set_title(f"NAB {series.path}: labelled windows and the service's anomalies")
    axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


@contextmanager
def middleware(url: str | None, api_key: str | None) -> Iterator[tuple[str, str]]:
    """A running service's URL and key: the given ones, or a fresh `python main.py` on loopback."""
    if url:
        yield url, api_key or ""
        return
    port = _free_port()
    api_key = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="nab-") as data_dir:
        env = {
            **os.environ,
            "OBSERVER_HOST": "127.0.0.1",
            "OBSERVER_PORT": str(port),
            "OBSERVER_DATA_DIR": data_dir,
            "OBSERVER_BACKEND_URL": "",
            "OBSERVER_ADMIN_API_KEY": api_key,
        }
        log = (Path(data_dir) / "middleware.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "main.py"], cwd=REPO_ROOT, env=env, stdout=log, stderr=log
        )
        try:
            base = f"http://127.0.0.1:{port}"
            try:
                _wait_ready(base, process)
            except (RuntimeError, TimeoutError) as exc:
                tail = (Path(data_dir) / "middleware.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{exc}:\n{tail}") from exc
            yield base, api_key
        finally:
            process.terminate()
            process.wait(timeout=30)
            log.close()


def run(data: Path, windows_file: Path, url: str | None, api_key: str | None) -> list[Series]:
    found = load(data, windows_file)
    with middleware(url, api_key) as (base, key):
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=auth, timeout=60) as client:
            _stream_and_read(client, found)
    return found


def _stream_and_read(client: httpx.Client, found: list[Series]) -> None:
    """Post every series, wait until the service has processed them, read back their flags."""
    metrics = client.get("/telemetry/metrics")
    metrics.raise_for_status()
    before = metrics.json()["accepted"]
    for series in found:
        stream(client, series)
    wait_processed(client, before + sum(len(s.stamps) for s in found))
    for series in found:
        series.flags = read_flags(client, series)


def speed(found: list[Series], batch_points: int = 2_000) -> dict[str, float]:
    """Points per second through the analyzer alone, and through the bare detector."""
    import numpy as np

    from telemetry.analyzer import Analyzer
    from telemetry.detectors import SeriesDetector
    from telemetry.processor import ProcessedBatch

    batches = []
    for series in found:
        key = (SERVICE, series.name, ())
        for start in range(0, len(series.stamps), batch_points):
            stamps = series.stamps[start : start + batch_points]
            points = [{"ts": ts, "service": SERVICE, "name": series.name} for ts in stamps]
            values = np.array(series.values[start : start + batch_points])
            indices = np.arange(len(stamps))
            batches.append(ProcessedBatch(points, np.array(stamps), values, [(key, indices)]))

    analyzer = Analyzer()
    started = time.perf_counter()
    for batch in batches:
        analyzer.analyze(batch)
    analyzer_seconds = time.perf_counter() - started

    started = time.perf_counter()
    for series in found:
        observe = SeriesDetector().observe
        for ts, value in zip(series.stamps, series.values, strict=True):
            observe(ts, value)
    detector_seconds = time.perf_counter() - started

    total = sum(len(series.stamps) for series in found)
    return {"analyzer": total / analyzer_seconds, "detector": total / detector_seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of NAB series")
    parser.add_argument("--windows", type=Path, help="windows.json (default: beside --data)")
    parser.add_argument("--url", help="a running service; default: start one")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("OBSERVER_API_KEY"),
        help="a key with the telemetry scopes, for --url (default: $OBSERVER_API_KEY)",
    )
    parser.add_argument("--plot", type=Path, help="write a PNG of one series here")
    parser.add_argument("--plot-series", default=PLOT_SERIES, help="<category>/<name>.csv")
    parser.add_argument(
        "--speed", action="store_true", help="only time the analyzer and detector in-process"
    )
    args = parser.parse_args(argv)
    windows = args.windows or args.data.parent / "windows.json"

    if args.speed:
        rates = speed(load(args.data, windows))
        print(", ".join(f"{stage}: {rate:,.0f} points/s" for stage, rate in rates.items()))
        return 0

    started = time.monotonic()
    found = run(args.data, windows, args.url, args.api_key)
    total = sum(len(series.stamps) for series in found)
    print(f"{len(found)} series, {total} points through {SERVICE!r} metrics\n")
    print(report(score(found)))
    print(f"\nfinished in {time.monotonic() - started:.0f} s")
    if args.plot:
        chosen = [series for series in found if series.path == args.plot_series]
        if chosen:
            plot(chosen[0], args.plot)
            print(f"plot written to {args.plot}")
    return 0


def _post(client: httpx.Client, points: list[dict]) -> None:
    while True:
        response = client.post("/telemetry/batch", json=points)
        if response.status_code in (429, 503):
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        response.raise_for_status()
        body = response.json()
        if body.get("rejected"):
            raise RuntimeError(f"the service rejected points: {body['rejected'][:3]}")
        return


def instant(text: str) -> float:
    """A NAB timestamp (naive, UTC) or the service's ISO 8601 string as Unix seconds."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise RuntimeError("the middleware exited during start-up; see its log")
        try:
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the middleware did not become ready")


if __name__ == "__main__":
    sys.exit(main())
