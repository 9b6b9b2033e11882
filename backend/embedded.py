"""The backend as an ASGI app inside another process (the middleware, via httpx.ASGITransport).

Django settings are global to a process and can be configured once, so the first call decides
the database and token; later calls with the same arguments get the same app back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_configured_with: tuple[str, str] | None = None
_app: Callable[..., Any] | None = None


def create_asgi_app(database_url: str, token: str) -> Callable[..., Any]:
    """Configure Django, apply migrations and return its ASGI application."""
    global _configured_with, _app

    with _lock:
        if _configured_with is not None:
            if _configured_with != (database_url, token):
                raise RuntimeError(
                    "The embedded backend is already configured with another database URL or "
                    "token; Django allows one configuration per process."
                )
            return _app

        _app = _build(database_url, token)
        _configured_with = (database_url, token)
        return _app


def _build(database_url: str, token: str) -> Callable[..., Any]:
    import django
    from django.conf import settings

    from backend.settings import build_settings

    if settings.configured:
        raise RuntimeError("Django settings were configured by someone else in this process.")
    settings.configure(**build_settings(database_url, token))
    django.setup()

    # Django refuses ORM calls from a thread running an event loop, and the caller may be
    # one (a lifespan hook), so migrations run in a worker thread of their own.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="backend-migrate") as pool:
        pool.submit(migrate).result()

    from django.core.asgi import get_asgi_application

    logger.info("Embedded backend ready on %s", settings.DATABASES["default"]["ENGINE"])
    return get_asgi_application()


def migrate() -> None:
    """Apply every migration, then close this thread's connection."""
    from django.core.management import call_command
    from django.db import connections

    try:
        call_command("migrate", interactive=False, verbosity=0)
    finally:
        connections.close_all()
