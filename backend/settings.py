"""Django settings for the backend, built from a database URL and a token, never from a file.

Built programmatically so the same code serves `python -m backend` and the embedded app.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

# Not the embedded backend's data/backend.sqlite3: a standalone backend beside an
# embedded one must not share its file.
DEFAULT_DATABASE_URL = "sqlite:///data/reference-backend.sqlite3"
SQLITE_PREFIX = "sqlite:///"
SERVER_ENGINES = {
    "postgresql": "django.db.backends.postgresql",
    "postgres": "django.db.backends.postgresql",
    "mysql": "django.db.backends.mysql",
}
# Concurrent writers queue for the write lock this long before failing.
SQLITE_LOCK_TIMEOUT_SECONDS = 30

APPS = ("core", "analytics", "appmetrics", "notification", "template_dashboards")


def database_settings(url: str) -> dict[str, Any]:
    """Django's DATABASES entry for `sqlite:///path` or `postgresql://user@host:port/db`."""
    if url.startswith(SQLITE_PREFIX):
        return sqlite_settings(Path(url.removeprefix(SQLITE_PREFIX)))

    parts = urlsplit(url)
    engine = SERVER_ENGINES.get(parts.scheme)
    if engine is None or not parts.path.strip("/"):
        raise ValueError(
            f"Unsupported database URL {url!r}: use sqlite:///path, "
            "postgresql://user:password@host:port/name or mysql://..."
        )
    return {
        "ENGINE": engine,
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


def sqlite_settings(path: Path) -> dict[str, Any]:
    path = path.expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            "timeout": SQLITE_LOCK_TIMEOUT_SECONDS,
            # IMMEDIATE takes the write lock when a transaction starts, so two writers
            # queue instead of one failing with "database is locked" on lock upgrade.
            "transaction_mode": "IMMEDIATE",
            # WAL lets readers proceed while a writer holds the lock.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


def build_settings(database_url: str, token: str) -> dict[str, Any]:
    """The full settings mapping for `django.conf.settings.configure`."""
    if not token:
        raise ValueError("The backend token must not be empty.")

    return {
        "DEBUG": False,
        # Random per process: nothing signed by it outlives the process (no sessions).
        "SECRET_KEY": secrets.token_urlsafe(50),
        # Every route but health needs the token, and the server binds to loopback; the
        # embedded app is reached under whatever host name the middleware's client uses.
        "ALLOWED_HOSTS": ["*"],
        "INSTALLED_APPS": [
            "rest_framework",
            "django_filters",
            *(f"backend.{app}.apps.{app_config_name(app)}" for app in APPS),
        ],
        "MIDDLEWARE": [],
        "ROOT_URLCONF": "backend.urls",
        "DATABASES": {"default": database_settings(database_url)},
        "USE_TZ": True,
        "TIME_ZONE": "UTC",
        "DATA_UPLOAD_MAX_MEMORY_SIZE": 16 * 1024 * 1024,
        "REST_FRAMEWORK": rest_framework_settings(),
        "OBSERVER_BACKEND_TOKEN": token,
    }


def rest_framework_settings() -> dict[str, Any]:
    return {
        "DEFAULT_AUTHENTICATION_CLASSES": ["backend.common.auth.ServiceTokenAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["backend.common.auth.HasServiceToken"],
        "DEFAULT_PAGINATION_CLASS": "backend.common.pagination.StrictPageNumberPagination",
        "DEFAULT_METADATA_CLASS": "backend.common.metadata.ResourceMetadata",
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
        "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
        # No django.contrib.auth: the only caller is the service holding the token.
        "UNAUTHENTICATED_USER": None,
        "UNAUTHENTICATED_TOKEN": None,
    }


def app_config_name(app: str) -> str:
    return "".join(word.capitalize() for word in app.split("_")) + "Config"
