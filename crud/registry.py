"""Which entity types exist, learnt from the backend's API root.

The root answers `{app: {resource: url}}`. It is read at start-up and again
when a caller names a type we do not know, at most once per
`min_refresh_seconds`, so a new backend resource appears without a restart
and a typo cannot make us hammer the backend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django_integration.api_client import BackendClient
from service.problems import Problem

logger = logging.getLogger(__name__)

EXPECTED_APPS = ("analytics", "appmetrics", "core", "notification", "template_dashboards")


class EntityRegistry:
    def __init__(
        self,
        client: BackendClient,
        *,
        min_refresh_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._min_refresh_seconds = min_refresh_seconds
        self._clock = clock
        self._entity_types: set[str] = set()
        self._last_refresh: float | None = None

    @property
    def entity_types(self) -> list[str]:
        return sorted(self._entity_types)

    @property
    def loaded(self) -> bool:
        return bool(self._entity_types)

    def missing_apps(self) -> list[str]:
        apps = {entity_type.split(".", 1)[0] for entity_type in self._entity_types}
        return [app for app in EXPECTED_APPS if app not in apps]

    async def refresh(self) -> None:
        self._last_refresh = self._clock()
        response = await self._client.request("GET", "/api/")
        root = response.json()
        discovered = {
            f"{app}.{resource}"
            for app, resources in root.items()
            if isinstance(resources, dict)
            for resource in resources
        }
        if discovered != self._entity_types:
            logger.info("entity registry now holds %d entity types", len(discovered))
        self._entity_types = discovered

    async def resolve(self, entity_type: str) -> str:
        """The backend path of an entity type's collection, or a 404 naming the known types."""
        if entity_type not in self._entity_types and self._may_refresh():
            await self.refresh()
        if entity_type not in self._entity_types:
            raise Problem(
                404,
                f"Unknown entity type {entity_type!r}.",
                title="Unknown entity type",
                extra={"known_entity_types": self.entity_types},
            )
        app, resource = entity_type.split(".", 1)
        return f"/api/{app}/{resource}/"

    def _may_refresh(self) -> bool:
        # Until discovery has once succeeded we know nothing: never answer "unknown".
        if self._last_refresh is None or not self._entity_types:
            return True
        return self._clock() - self._last_refresh >= self._min_refresh_seconds
