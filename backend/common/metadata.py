"""OPTIONS answers: DRF's field descriptions plus the filters and orderings a list accepts."""

from __future__ import annotations

from typing import Any

from rest_framework.metadata import SimpleMetadata
from rest_framework.request import Request


class ResourceMetadata(SimpleMetadata):
    """Lets the middleware discover fields, filters and ordering without hard-coding them."""

    def determine_metadata(self, request: Request, view: Any) -> dict[str, Any]:
        metadata = super().determine_metadata(request, view)
        # Every write honours If-Match atomically (see viewsets.py): say so, so a client
        # can rely on it instead of locking on its own side.
        metadata["conditional_writes"] = True
        filterset_class = getattr(view, "filterset_class", None)
        if filterset_class is None:
            return metadata

        metadata["filters"] = sorted(filterset_class.base_filters)
        metadata["ordering"] = [field.name for field in filterset_class._meta.model._meta.fields]
        return metadata
