"""The abstract model every resource inherits: UUID id, optimistic version, soft delete."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models


class TrackedModel(models.Model):
    """A row with an optimistic-concurrency `version` and an `is_active` soft-delete flag."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Bumped by exactly one on every write, always in the database (see common.viewsets).
    version = models.PositiveIntegerField(default=1, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ("created_at", "id")


def validate_json_list(value: object) -> None:
    """Reject a JSON value that is not a list (widgets, tags)."""
    if not isinstance(value, list):
        raise ValidationError("Must be a JSON list.")


def validate_json_object(value: object) -> None:
    """Reject a JSON value that is not an object (configs, layouts, queries)."""
    if not isinstance(value, dict):
        raise ValidationError("Must be a JSON object.")
