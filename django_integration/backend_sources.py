"""What the telemetry pipeline reads from the backend: applications and alert rules."""

from __future__ import annotations

from typing import Any

from .api_client import BackendClient

PAGE_SIZE = 1000


class DjangoBackendSources:
    """Implements `telemetry.sources.BackendSources` over the shared client."""

    def __init__(self, client: BackendClient) -> None:
        self._client = client

    async def applications(self) -> list[dict[str, Any]]:
        return await self._all("/api/appmetrics/applications/")

    async def alert_rules(self) -> list[dict[str, Any]]:
        return await self._all("/api/notification/alert-rules/")

    async def _all(self, collection: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {"page": page, "page_size": PAGE_SIZE}
            body = (await self._client.request("GET", collection, params=params)).json()
            records.extend(body["results"])
            if body.get("next") is None:
                return records
            page += 1
