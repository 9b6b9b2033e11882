"""Safe by default: the first start without any key creates an admin key and shows it once."""

from __future__ import annotations

import sys
from typing import TextIO

from service.settings import Settings

from .exceptions import KeyNameTaken
from .keys import IssuedKey, KeyStore
from .scopes import Scope

FIRST_KEY_NAME = "admin"


async def ensure_first_admin_key(
    store: KeyStore, settings: Settings, out: TextIO = sys.stdout
) -> IssuedKey | None:
    """Create and print an admin key when none is in the environment or the database."""
    if settings.admin_api_key.get_secret_value() or await store.exists():
        return None
    try:
        issued = await store.create(FIRST_KEY_NAME, [Scope.ADMIN])
    except KeyNameTaken:
        return None  # another instance on the same database made it first
    # On stdout, never the structured log on stderr: log pipelines keep and ship its lines.
    out.write(
        "\nNo API key was configured, so this admin key was created. It is shown only now;"
        " only its hash is stored:\n\n"
        f"    {issued.key}\n\n"
        "Send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`, and create narrower"
        " keys with `python -m auth create --name NAME --scope SCOPE` or POST /auth/keys.\n\n"
    )
    out.flush()
    return issued
