"""Graceful shutdown of a real `python main.py`: SIGTERM refuses new points with 503, the queue
drains within the deadline and the count left unprocessed is logged (0 here)."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import httpx
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from service.settings import Settings
from telemetry.pipeline import Pipeline
from tests.middleware_server import MiddlewareServer

HOUR_AGO = int(time.time()) - 3600
BATCH = 10_000


def _batch(offset: int) -> list[dict]:
    return [
        {"name": "cpu", "value": float(i % 97), "timestamp": HOUR_AGO + (offset + i) / 1000}
        for i in range(BATCH)
    ]


def _otlp_gauge() -> bytes:
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add(name="otlp.cpu")
    metric.gauge.data_points.add(time_unix_nano=HOUR_AGO * 10**9, as_double=0.5)
    return request.SerializeToString()


def _wait_for_log(server: MiddlewareServer, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log():
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{server.log()}"
        time.sleep(0.02)


def _events(server: MiddlewareServer) -> list[str]:
    events = []
    for line in server.log().splitlines():
        try:
            events.append(json.loads(line)["event"])
        except (ValueError, KeyError):
            continue
    return events


def _status_and_headers(sock: socket.socket) -> tuple[int, dict[str, str]]:
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {received!r}"
        received += chunk
    head = received.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in head[1:])
    return int(head[0].split(" ")[1]), {name.lower(): value for name, value in headers.items()}


def test_sigterm_refuses_new_points_drains_the_queue_and_logs_zero_left(tmp_path: Path):
    env = {
        # One point a batch, so a backlog is still queued when the signal arrives.
        "OBSERVER_TELEMETRY_WORKER_BATCH_SIZE": "1",
        "OBSERVER_TELEMETRY_DRAIN_TIMEOUT_SECONDS": "60",
    }
    server = MiddlewareServer(tmp_path, env=env).start()
    process = server._process
    assert process is not None
    try:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as client:
            for offset in (0, BATCH):
                accepted = client.post("/telemetry/batch", json=_batch(offset)).json()["accepted"]
                assert accepted == BATCH
            otlp = client.post(
                "/v1/metrics",
                content=_otlp_gauge(),
                headers={"content-type": "application/x-protobuf"},
            )
            assert (otlp.status_code, otlp.content) == (200, b"")

            # A request whose body is still on its way when the signal arrives.
            late = json.dumps([{"name": "cpu", "value": 1.0, "timestamp": HOUR_AGO}]).encode()
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(
                b"POST /telemetry/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\n"
                + f"Authorization: {server.headers['Authorization']}\r\n".encode()
                + f"Content-Length: {len(late)}\r\n\r\n".encode()
                + late[:5]
            )
            # Answered after the server has read those headers (it was readable first), so the
            # request is in flight, not a connection uvicorn may close idle on shutdown.
            backlog = client.get("/telemetry/metrics").json()["queued"]
        process.send_signal(signal.SIGTERM)
        _wait_for_log(server, "Telemetry pipeline refusing new points: shutting down.")
        sock.sendall(late[5:])
        status, headers = _status_and_headers(sock)
        sock.close()

        # uvicorn re-raises the signal once it has shut down, so the exit is by SIGTERM.
        assert process.wait(timeout=60) == -signal.SIGTERM
    finally:
        server.stop()

    assert backlog > 0
    assert (status, headers["retry-after"]) == (503, "5")
    assert headers["content-type"] == "application/problem+json"
    expected = (
        f"Telemetry pipeline stopped with 0 points unprocessed "
        f"(accepted {2 * BATCH + 1}, processed {2 * BATCH + 1})."
    )
    assert expected in _events(server)


async def test_the_pipeline_is_not_ready_from_the_moment_it_refuses_new_points(tmp_path: Path):
    pipeline = Pipeline(Settings(data_dir=tmp_path))
    before = pipeline.ready
    await pipeline.start()
    started = pipeline.ready
    pipeline.refuse_new()  # as the SIGTERM handler does, before the queue drains
    refusing = pipeline.ready
    await pipeline.stop(drain_timeout=5)

    assert (before, started, refusing, pipeline.ready) == (False, True, False, False)
