"""Waiting for the pipeline of a running service, without a fixed sleep."""

from __future__ import annotations

import time

import httpx


def wait_until_processed(api: httpx.Client, timeout: float = 60.0) -> dict:
    """The pipeline's counters once nothing is queued; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metrics = api.get("/telemetry/metrics").json()
        if metrics["queued"] == 0:
            return metrics
        time.sleep(0.05)
    raise AssertionError(f"pipeline did not drain: {metrics}")
