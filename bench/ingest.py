"""Telemetry ingestion, measured: throughput, accept latency and resident memory.

Starts the middleware (`python main.py`, embedded backend, free loopback port) and prints:

  json         points/s accepted and processed end to end through `POST /telemetry/batch`,
               1,000 points per request over 1,000 series
  otlp         the same through `POST /v1/metrics` in OTLP protobuf
  latency      p50 and p99 time to accept a batch at half the processed rate, paced
  memory       resident memory of a fresh service after 1,000,000 points over 10,000 series
  soak         (with --soak SECONDS) resident memory sampled at half load for that long

The service runs as one worker process, as deployed: against a standalone reference backend
(`python -m backend` on loopback, through OBSERVER_BACKEND_URL), whose memory is its own and
printed apart; `--embedded-backend` runs Django inside the service instead, as the tests do.
The per-client rate limit is raised so that the
pipeline, not the limiter, is measured. Each rate is also given per second of the service's
own CPU time, which other load on the machine does not change much. A 429 is honoured as an
agent would: wait Retry-After, send again; refusals are counted and printed.

Run: python bench/ingest.py [--points 300000] [--soak 300] [--embedded-backend]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2  # noqa: E402
from opentelemetry.proto.common.v1 import common_pb2  # noqa: E402

from bench.process_cpu import cpu_seconds  # noqa: E402
from tests.backend_server import BackendServer  # noqa: E402
from tests.middleware_server import ADMIN_API_KEY, MiddlewareServer  # noqa: E402

POINTS_PER_REQUEST = 1_000
CONCURRENCY = 4
ENV = {"OBSERVER_TELEMETRY_RATE_LIMIT": "100000000/second", "OBSERVER_LOG_LEVEL": "WARNING"}
# The key the started service is given (see tests/middleware_server.py).
AUTH = {"Authorization": f"Bearer {ADMIN_API_KEY}"}
# Two days back: far enough that a long run never reaches the future-timestamp limit.
START = time.time() - 2 * 86_400

Body = tuple[bytes, str]


def json_body(round_: int, series: int, first: int = 0) -> Body:
    """One request: one point for each of `series` series (from `first`), at round `round_`."""
    points = [
        {
            "name": f"bench.m{index % 100}",
            "value": float((round_ * 7 + index) % 113),
            "timestamp": START + round_,
            "service": "bench",
            "attributes": {"host": f"h{index // 100}"},
        }
        for index in range(first, first + series)
    ]
    return json.dumps(points).encode(), "application/json"


def otlp_body(round_: int, series: int) -> Body:
    """The same request as OTLP protobuf: gauges under one resource."""
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    resource.resource.attributes.append(
        common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value="otlp"))
    )
    scope = resource.scope_metrics.add()
    stamp = int((START + round_) * 1e9)
    for index in range(series):
        metric = scope.metrics.add(name=f"otlp.m{index % 100}")
        point = metric.gauge.data_points.add(
            time_unix_nano=stamp, as_double=float((round_ * 7 + index) % 113)
        )
        point.attributes.append(
            common_pb2.KeyValue(
                key="host", value=common_pb2.AnyValue(string_value=f"h{index // 100}")
            )
        )
    return request.SerializeToString(), "application/x-protobuf"


class Sender:
    """Posts bodies, honouring 429/503 with Retry-After, and records accept latencies."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.latencies: list[float] = []
        self.refusals = 0

    async def send(self, path: str, body: Body) -> None:
        content, content_type = body
        while True:
            started = time.perf_counter()
            response = await self.client.post(
                path, content=content, headers={"content-type": content_type}
            )
            if response.status_code in (429, 503):
                self.refusals += 1
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                continue
            response.raise_for_status()
            self.latencies.append(time.perf_counter() - started)
            return


async def metrics(client: httpx.AsyncClient) -> dict:
    return (await client.get("/telemetry/metrics")).json()


async def wait_processed(client: httpx.AsyncClient) -> dict:
    while True:
        found = await metrics(client)
        if found["processed"] == found["accepted"]:
            return found
        await asyncio.sleep(0.05)


async def throughput(url: str, path: str, bodies: list[Body], pid: int) -> dict:
    """Send every body with a few connections; rates of acceptance and of processing."""
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=120) as client:
        before = await metrics(client)
        cpu_before = cpu_seconds(pid)
        sender = Sender(client)
        queue: asyncio.Queue[Body] = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)

        async def worker() -> None:
            while not queue.empty():
                await sender.send(path, queue.get_nowait())

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        accepted_at = time.perf_counter() - started
        after = await wait_processed(client)
        processed_at = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu_before

    points = after["processed"] - before["processed"]
    return {
        "points": points,
        "per_cpu_second": points / cpu,
        "accepted_per_s": points / accepted_at,
        "processed_per_s": points / processed_at,
        "refusals": sender.refusals,
        "dropped": after["dropped"],
    }


async def paced(
    url: str, make_body: Callable[[int], Body], rate: float, seconds: float, on_tick=None
) -> dict:
    """Send one batch every 1/rate seconds, on a fixed schedule; accept latencies."""
    interval = 1.0 / rate
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=120) as client:
        sender = Sender(client)
        tasks: list[asyncio.Task] = []
        loop = asyncio.get_running_loop()
        started = loop.time()
        count = 0
        while loop.time() - started < seconds:
            tasks.append(asyncio.create_task(sender.send("/telemetry/batch", make_body(count))))
            count += 1
            if on_tick is not None:
                await on_tick(loop.time() - started)
            await asyncio.sleep(max(0.0, started + count * interval - loop.time()))
        await asyncio.gather(*tasks)
        final = await wait_processed(client)

    latencies = sorted(sender.latencies)
    return {
        "batches": len(latencies),
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[max(0, int(0.99 * len(latencies)) - 1)],
        "refusals": sender.refusals,
        "dropped": final["dropped"],
    }


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc status")


def start_service(data_dir: Path, backend: BackendServer | None) -> tuple[MiddlewareServer, int]:
    env = dict(ENV)
    if backend is not None:
        env.update(backend.env)
    server = MiddlewareServer(data_dir, env=env).start()
    return server, server.pid


async def run(points: int, soak: float, embedded: bool) -> None:
    if embedded:
        await measure(points, soak, None)
        return
    with BackendServer() as backend:
        assert backend._process is not None
        print(f"backend pid {backend._process.pid} at {backend.url}")
        await measure(points, soak, backend)
        print(f"backend   resident {resident_mb(backend._process.pid):.0f} MB at the end")


async def measure(points: int, soak: float, backend: BackendServer | None) -> None:
    rounds = points // POINTS_PER_REQUEST
    with tempfile.TemporaryDirectory() as scratch:
        server, pid = start_service(Path(scratch) / "throughput", backend)
        try:
            print(f"service pid {pid}, resident {resident_mb(pid):.0f} MB at start")
            json_bodies = [json_body(r, POINTS_PER_REQUEST) for r in range(rounds)]
            result = await throughput(server.url, "/telemetry/batch", json_bodies, pid)
            print_rates("json", result)
            half_rate = result["processed_per_s"] / 2

            otlp_bodies = [otlp_body(r, POINTS_PER_REQUEST) for r in range(rounds)]
            print_rates("otlp", await throughput(server.url, "/v1/metrics", otlp_bodies, pid))

            rate = half_rate / POINTS_PER_REQUEST
            offset = rounds + 1

            def body(count: int) -> Body:
                return json_body(offset + count, POINTS_PER_REQUEST)

            latency = await paced(server.url, body, rate, seconds=20)
            print(
                f"latency   at {half_rate:,.0f} points/s: p50 {latency['p50_ms']:.1f} ms, "
                f"p99 {latency['p99_ms']:.1f} ms over {latency['batches']} batches, "
                f"refusals {latency['refusals']}, dropped {latency['dropped']}"
            )
        finally:
            server.stop()

        wide_rate = await memory(Path(scratch) / "memory", backend)
        if soak > 0:
            # Half of what the service sustains over the soak's 10,000 series, which cost more
            # per point than the 1,000 of the throughput runs.
            rate = min(half_rate, wide_rate / 2)
            await soak_run(Path(scratch) / "soak", rate, soak, backend)


async def memory(data_dir: Path, backend: BackendServer | None) -> float:
    """A fresh service, 1,000,000 points over 10,000 series, then its resident memory.

    Returns the processed rate over those 10,000 series.
    """
    server, pid = start_service(data_dir, backend)
    try:
        before = resident_mb(pid)
        bodies = (json_body(r // 10, POINTS_PER_REQUEST, (r % 10) * 1_000) for r in range(1_000))
        result = await throughput(server.url, "/telemetry/batch", list(bodies), pid)
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=60) as client:
            found = await metrics(client)
        print(
            f"memory    {result['points']:,} points over 10,000 series: resident "
            f"{resident_mb(pid):.0f} MB (at start {before:.0f} MB), "
            f"{found.get('series', '?')} series analysed, dropped {found['dropped']}"
        )
        print_rates("wide", result)
    finally:
        server.stop()
    return result["processed_per_s"]


async def soak_run(
    data_dir: Path, rate_points: float, seconds: float, backend: BackendServer | None
) -> None:
    """Half load for `seconds`, resident memory every 10 s."""
    server, pid = start_service(data_dir, backend)
    samples: list[tuple[float, float]] = []
    next_sample = 0.0

    async def sample(elapsed: float) -> None:
        nonlocal next_sample
        if elapsed >= next_sample:
            samples.append((elapsed, resident_mb(pid)))
            next_sample += 10.0

    def body(count: int) -> Body:
        # 10,000 series, each one point further in time per pass.
        return json_body(count // 10, POINTS_PER_REQUEST, (count % 10) * 1_000)

    try:
        result = await paced(server.url, body, rate_points / POINTS_PER_REQUEST, seconds, sample)
        samples.append((seconds, resident_mb(pid)))
    finally:
        server.stop()

    print(f"soak      {seconds:.0f} s at {rate_points:,.0f} points/s, resident MB every 10 s:")
    print("          " + " ".join(f"{mb:.0f}" for _, mb in samples))
    half = len(samples) // 2
    first, second = samples[half][1], samples[-1][1]
    print(
        f"          second half {first:.0f} -> {second:.0f} MB; p99 accept "
        f"{result['p99_ms']:.1f} ms; refusals {result['refusals']}, dropped {result['dropped']}"
    )


def print_rates(label: str, result: dict) -> None:
    print(
        f"{label:<9} {result['points']:,} points: accepted {result['accepted_per_s']:,.0f}/s, "
        f"processed end to end {result['processed_per_s']:,.0f}/s "
        f"({result['per_cpu_second']:,.0f} per CPU second of the service), "
        f"refusals {result['refusals']}, dropped {result['dropped']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=300_000, help="points per throughput run")
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of soak at half load")
    parser.add_argument(
        "--embedded-backend",
        action="store_true",
        help="run Django inside the service instead of as a standalone backend",
    )
    arguments = parser.parse_args()
    asyncio.run(run(arguments.points, arguments.soak, arguments.embedded_backend))


if __name__ == "__main__":
    main()
