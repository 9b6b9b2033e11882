"""CRUD latency, side by side: the backend directly, and through the middleware.

Starts the reference backend (`python -m backend`) and the middleware (`python main.py`)
on free loopback ports, fills the backend with entities, then times, one request at a
time from one keep-alive client per path (a direct call and its counterpart through the
middleware take turns, request by request, so that both see the same load on the machine):

  direct GET     GET /api/notification/channels/<id>/ straight to the backend
  miss GET       the same through the middleware, each id read for the first time
  hit GET        the same through the middleware, an id read before
  direct PATCH   PATCH straight to the backend (conditional on If-Match), for scale
  PATCH          PATCH through the middleware: audit entry, conditional write, invalidation

Also printed: the middleware's own CPU time per miss and per hit (from /proc, all its
threads), which the machine's other load changes less than latency.

Run: python bench/crud.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.process_cpu import cpu_seconds  # noqa: E402
from tests.backend_server import BackendServer  # noqa: E402
from tests.middleware_server import MiddlewareServer  # noqa: E402

CHANNELS = "/api/notification/channels/"


def timed(client: httpx.Client, method: str, urls: list[str], **kwargs) -> list[float]:
    return [time_one(client, method, url, **kwargs) for url in urls]


def timed_in_turns(
    direct: httpx.Client,
    through: httpx.Client,
    method: str,
    direct_urls: list[str],
    through_urls: list[str],
    **kwargs,
) -> tuple[list[float], list[float]]:
    """Both paths, alternating request by request: a burst of load elsewhere on the machine
    then slows both alike instead of whichever was running."""
    direct_ms, through_ms = [], []
    for direct_url, through_url in zip(direct_urls, through_urls, strict=True):
        direct_ms.append(time_one(direct, method, direct_url, **kwargs))
        through_ms.append(time_one(through, method, through_url, **kwargs))
    return direct_ms, through_ms


def time_one(client: httpx.Client, method: str, url: str, **kwargs) -> float:
    started = time.perf_counter()
    response = client.request(method, url, **kwargs)
    elapsed_ms = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed_ms


def summary(latencies: list[float]) -> tuple[float, float, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return statistics.median(ordered), p99, 1000 * len(ordered) / sum(ordered)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    count = parser.parse_args().requests

    with tempfile.TemporaryDirectory() as data, BackendServer() as backend:
        env = {
            **backend.env,
            "OBSERVER_LOG_LEVEL": "WARNING",
            # The hit phase reads what the miss phase cached; on a slow machine the miss
            # phase outlasts the default 30 s TTL, and the hits would be misses.
            "OBSERVER_CACHE_TTL_SECONDS": "3600",
        }
        with (
            MiddlewareServer(Path(data), env=env) as middleware,
            httpx.Client(base_url=backend.url, headers=backend.headers) as direct,
            httpx.Client(base_url=middleware.url, headers=middleware.headers) as through,
        ):
            warmup, measured, spare = 50, count, count
            ids = [
                direct.post(CHANNELS, json={"name": f"bench-{n}", "channel_type": "email"}).json()[
                    "id"
                ]
                for n in range(warmup + measured + spare)
            ]
            paths = [f"{CHANNELS}{entity_id}/" for entity_id in ids]
            warm, urls, spare_urls = (
                paths[:warmup],
                paths[warmup : warmup + measured],
                paths[warmup + measured :],
            )
            timed(direct, "GET", warm)  # warm both paths' connections and code
            timed(through, "GET", warm)
            patch = {"json": {"rate_limit_per_hour": 2}, "headers": {"If-Match": '"1"'}}

            pid = middleware.pid
            started = cpu_seconds(pid)
            direct_get, miss_get = timed_in_turns(direct, through, "GET", urls, urls)
            missed = cpu_seconds(pid)
            hit_get = timed(through, "GET", urls)
            cpu_ms = {
                "miss": (missed - started) * 1000 / count,
                "hit": (cpu_seconds(pid) - missed) * 1000 / count,
            }
            direct_patch, patch_through = timed_in_turns(
                direct, through, "PATCH", spare_urls, urls, **patch
            )
            results = {
                "direct GET": direct_get,
                "miss GET": miss_get,
                "hit GET": hit_get,
                "direct PATCH": direct_patch,
                "PATCH": patch_through,
            }
    report(results, cpu_ms, count)


def report(results: dict[str, list[float]], cpu_ms: dict[str, float], count: int) -> None:
    print(f"{count} requests each, sequential, one keep-alive client, loopback")
    print(f"{'path':<13} {'median ms':>10} {'p99 ms':>8} {'req/s':>8}")
    figures = {name: summary(latencies) for name, latencies in results.items()}
    for name, (median, p99, rps) in figures.items():
        print(f"{name:<13} {median:>10.2f} {p99:>8.2f} {rps:>8.0f}")
    direct, miss, hit = (figures[name][0] for name in ("direct GET", "miss GET", "hit GET"))
    print(f"miss adds {miss - direct:+.2f} ms median over direct (target at most +1.50)")
    paired = [m - d for d, m in zip(results["direct GET"], results["miss GET"], strict=True)]
    print(f"  (median of the per-request differences: {statistics.median(paired):+.2f} ms)")
    print(f"hit is {direct / hit:.1f}x faster than direct (target at least 5x)")
    print(f"middleware CPU per request: miss {cpu_ms['miss']:.2f} ms, hit {cpu_ms['hit']:.2f} ms")
    patch_direct, patch_through = figures["direct PATCH"][0], figures["PATCH"][0]
    print(f"PATCH through the middleware takes {patch_through / patch_direct:.1f}x the direct one")


if __name__ == "__main__":
    main()
