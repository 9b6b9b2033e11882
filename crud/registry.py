"""Which entity types exist and what they hold, learnt from the backend.

The API root answers `{app: {resource: url}}`; each resource's OPTIONS answers
its fields (type, required, read-only, choices, bounds), the filters and sort
fields its list accepts, and whether it writes conditionally on If-Match. An
optional JSON file of overrides is laid over what was discovered. Discovery
runs at start-up, and again when a caller names a type we do not know, at most
once per `min_refresh_seconds`, so a new resource appears without a restart
and a typo cannot make us hammer the backend.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django_integration.api_client import BackendClient
from service.problems import Problem

logger = logging.getLogger(__name__)

EXPECTED_APPS = ("analytics", "appmetrics", "core", "notification", "template_dashboards")
ALWAYS_READ_ONLY = frozenset({"id", "version", "created_at", "updated_at"})


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    required: bool = False
    read_only: bool = False
    choices: tuple[Any, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    max_length: int | None = None


@dataclass
class EntitySchema:
    entity_type: str
    fields: dict[str, FieldSpec]
    filters: frozenset[str] = frozenset()
    ordering: frozenset[str] = frozenset()
    conditional_writes: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def collection_path(self) -> str:
        app, resource = self.entity_type.split(".", 1)
        return f"/api/{app}/{resource}/"

    def writable(self, name: str) -> bool:
        spec = self.fields.get(name)
        return spec is not None and not spec.read_only and name not in ALWAYS_READ_ONLY


class EntityRegistry:
    def __init__(
        self,
        client: BackendClient,
        *,
        overrides_file: Path | None = None,
        min_refresh_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._overrides = _read_overrides(overrides_file)
        self._min_refresh_seconds = min_refresh_seconds
        self._clock = clock
        self._schemas: dict[str, EntitySchema] = {}
        self._last_refresh: float | None = None
        self._refreshing = asyncio.Lock()

    @property
    def entity_types(self) -> list[str]:
        return sorted(self._schemas)

    @property
    def loaded(self) -> bool:
        return bool(self._schemas)

    def missing_apps(self) -> list[str]:
        apps = {entity_type.split(".", 1)[0] for entity_type in self._schemas}
        return [app for app in EXPECTED_APPS if app not in apps]

    def without_conditional_writes(self) -> list[str]:
        return sorted(
            name for name, schema in self._schemas.items() if not schema.conditional_writes
        )

    def describe(self, entity_type: str) -> dict[str, Any]:
        """What a caller may send for one entity type, for `GET /crud/entities`."""
        schema = self._schemas[entity_type]
        return {
            "entity_type": entity_type,
            "fields": {
                name: {
                    key: value
                    for key, value in asdict(spec).items()
                    if key != "name" and value not in (None, ())
                }
                for name, spec in schema.fields.items()
            },
            "filters": sorted(schema.filters),
            "ordering": sorted(schema.ordering),
            "conditional_writes": schema.conditional_writes,
        }

    async def refresh(self) -> None:
        async with self._refreshing:
            self._last_refresh = self._clock()
            root = (await self._client.request("GET", "/api/")).json()
            paths = {
                f"{app}.{resource}": f"/api/{app}/{resource}/"
                for app, resources in root.items()
                if isinstance(resources, dict)
                for resource in resources
            }
            described = await asyncio.gather(*(self._describe(t, p) for t, p in paths.items()))
            schemas = {schema.entity_type: schema for schema in described}
            if set(schemas) != set(self._schemas):
                logger.info("entity registry now holds %d entity types", len(schemas))
            self._schemas = schemas

    async def resolve(self, entity_type: str) -> EntitySchema:
        """The schema of an entity type, or a 404 naming the known types."""
        if entity_type not in self._schemas and self._may_refresh():
            await self.refresh()
        schema = self._schemas.get(entity_type)
        if schema is None:
            raise Problem(
                404,
                f"Unknown entity type {entity_type!r}.",
                title="Unknown entity type",
                extra={"known_entity_types": self.entity_types},
            )
        return schema

    async def _describe(self, entity_type: str, path: str) -> EntitySchema:
        metadata = (await self._client.request("OPTIONS", path)).json()
        described = metadata.get("actions", {}).get("POST", {})
        overrides = self._overrides.get(entity_type, {})
        fields = {
            name: _field_spec(name, {**spec, **overrides.get("fields", {}).get(name, {})})
            for name, spec in described.items()
        }
        for name, spec in overrides.get("fields", {}).items():
            fields.setdefault(name, _field_spec(name, spec))
        return EntitySchema(
            entity_type=entity_type,
            fields=fields,
            filters=frozenset(metadata.get("filters", ())),
            ordering=frozenset(metadata.get("ordering", ())),
            conditional_writes=bool(
                overrides.get("conditional_writes", metadata.get("conditional_writes", False))
            ),
        )

    def _may_refresh(self) -> bool:
        # Until discovery has once succeeded we know nothing: never answer "unknown".
        if self._last_refresh is None or not self._schemas:
            return True
        return self._clock() - self._last_refresh >= self._min_refresh_seconds


def _field_spec(name: str, spec: dict[str, Any]) -> FieldSpec:
    choices = tuple(choice["value"] for choice in spec.get("choices", ()))
    return FieldSpec(
        name=name,
        type=str(spec.get("type", "field")),
        required=bool(spec.get("required", False)),
        read_only=bool(spec.get("read_only", False)) or name in ALWAYS_READ_ONLY,
        choices=choices,
        min_value=spec.get("min_value"),
        max_value=spec.get("max_value"),
        max_length=spec.get("max_length"),
    )


def _read_overrides(path: Path | None) -> dict[str, Any]:
    """`{entity_type: {"fields": {name: {...}}, "conditional_writes": bool}}`, or nothing."""
    if path is None:
        return {}
    overrides = json.loads(path.read_text())
    if not isinstance(overrides, dict):
        raise ValueError(f"{path}: the entity overrides file must hold a JSON object")
    return overrides
