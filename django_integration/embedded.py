"""The reference backend run in-process when no backend URL is configured.

Calls still go through the same `BackendClient`, retries and breaker; only
the transport differs (httpx's ASGI transport instead of a socket).
"""

from __future__ import annotations

import asyncio
import logging
import secrets

import httpx

from service.settings import Settings

EMBEDDED_BASE_URL = "http://127.0.0.1"


async def embedded_transport(settings: Settings) -> tuple[httpx.ASGITransport, str]:
    """Start the embedded backend on a SQLite file in the data directory."""
    from backend.embedded import create_asgi_app  # Django loads only when embedded

    token = settings.backend_token or secrets.token_urlsafe(32)
    database_path = (settings.data_dir / "backend.sqlite3").resolve()
    database_path.parent.mkdir(parents=True, exist_ok=True)
    # Migrations are synchronous ORM work: keep them off the event loop.
    app = await asyncio.to_thread(create_asgi_app, f"sqlite:///{database_path}", token)
    # The middleware logs every request already; Django would add a WARNING line for each
    # client error (404, 412, ...), which here are callers' mistakes the middleware answered.
    # Its server errors (ERROR) still show. Set after Django has set up its own logging.
    logging.getLogger("django.request").setLevel(logging.ERROR)
    return httpx.ASGITransport(app=app), token
