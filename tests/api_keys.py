"""API keys for tests: created through the running service's admin route, as an operator would."""

from __future__ import annotations

import uuid

import httpx


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_key(admin: httpx.Client, name: str, *scopes: str) -> str:
    """Create a key with `admin` (a client sending an admin credential); the key itself."""
    response = admin.post("/auth/keys", json={"name": name, "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    return response.json()["data"]["key"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
