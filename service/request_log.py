"""One log line per HTTP request, written when it ends (by service/edge.py)."""

from __future__ import annotations

import structlog

# Lazy: bound on first use, after configure_logging has set the JSON renderer.
logger = structlog.get_logger()
LOGGER_NAME = "observer.request"  # the same key stdlib lines carry, so operators can filter


def log_request(method: str, path: str, status: int, seconds: float, request_id: str) -> None:
    logger.info(
        "request",
        logger=LOGGER_NAME,
        method=method,
        path=path,
        status=status,
        duration_ms=round(seconds * 1000, 2),
        request_id=request_id,
    )
