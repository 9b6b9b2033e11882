"""The viewset every resource uses: versioned atomic writes, soft delete, restore, ETags.

Every write is one conditional `UPDATE ... WHERE id = ? [AND version = ?]` that also bumps
the version, so two writers holding the same version can never both succeed.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from backend.common.exceptions import PreconditionFailed
from backend.common.filters import StrictOrderingFilter
from backend.common.preconditions import expected_version, query_switch

logger = logging.getLogger(__name__)

LIST_PARAMS = {"page", "page_size", "ordering"}
INCLUDE_INACTIVE = "include_inactive"
HARD = "hard"


class TrackedViewSet(viewsets.ModelViewSet):
    """CRUD over one TrackedModel; subclasses set queryset, serializer and filter set."""

    filter_backends = (DjangoFilterBackend, StrictOrderingFilter)
    ordering = ("created_at", "id")

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.reject_unknown_params(request)

    def reject_unknown_params(self, request: Request) -> None:
        """A typo in a filter must fail loudly, never return every row."""
        allowed = set(self.filterset_class.base_filters) | {INCLUDE_INACTIVE}
        if self.action == "list":
            allowed |= LIST_PARAMS
        if self.action == "destroy":
            allowed.add(HARD)

        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise ValidationError({name: ["Unknown query parameter."] for name in unknown})

    def get_queryset(self) -> models.QuerySet:
        rows = self.queryset.model._default_manager.all()
        if self.action == "restore" or query_switch(self.request, INCLUDE_INACTIVE):
            return rows
        return rows.filter(is_active=True)

    # --- reads ------------------------------------------------------------------------

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.object_response(self.get_object(), status.HTTP_200_OK)

    # --- writes -----------------------------------------------------------------------

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                instance = serializer.save()
        except IntegrityError as error:
            raise self.conflict_error(self.get_serializer(data=request.data)) from error
        return self.object_response(instance, status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        partial = kwargs.pop("partial", False)
        expected = expected_version(request)
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)

        try:
            self.write(instance, expected, dict(serializer.validated_data))
        except IntegrityError as error:
            fresh = self.get_serializer(instance, data=request.data, partial=partial)
            raise self.conflict_error(fresh) from error
        return self.object_response(instance, status.HTTP_200_OK)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        expected = expected_version(request)
        hard = query_switch(request, HARD)
        instance = self.get_object()

        if hard:
            self.hard_delete(instance, expected)
        else:
            self.write(instance, expected, {"is_active": False})
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def restore(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        expected = expected_version(request)
        instance = self.get_object()
        self.write(instance, expected, {"is_active": True})
        return self.object_response(instance, status.HTTP_200_OK)

    # --- the conditional write ----------------------------------------------------------

    def write(self, instance: models.Model, expected: int | None, changes: dict) -> None:
        """Apply `changes` and bump the version in one conditional UPDATE, then reload."""
        many = {
            name: changes.pop(name)
            for name in list(changes)
            if isinstance(instance._meta.get_field(name), models.ManyToManyField)
        }

        with transaction.atomic():
            updated = self.target(instance, expected).update(
                **changes, version=F("version") + 1, updated_at=timezone.now()
            )
            if updated == 0:
                raise self.precondition_error(instance)
            for name, related in many.items():
                getattr(instance, name).set(related)

        instance.refresh_from_db()

    def hard_delete(self, instance: models.Model, expected: int | None) -> None:
        with transaction.atomic():
            _, per_model = self.target(instance, expected).delete()
            if per_model.get(instance._meta.label, 0) == 0:
                raise self.precondition_error(instance)
        logger.info("Hard-deleted %s %s", instance._meta.label, instance.pk)

    def target(self, instance: models.Model, expected: int | None) -> models.QuerySet:
        """The row to write, narrowed to the expected version when If-Match asked for one."""
        rows = type(instance)._default_manager.filter(pk=instance.pk)
        if expected is None:
            return rows
        return rows.filter(version=expected)

    def precondition_error(self, instance: models.Model) -> Exception:
        """412 with the current version; 404 if the row vanished meanwhile."""
        rows = type(instance)._default_manager.filter(pk=instance.pk)
        current = rows.values_list("version", flat=True).first()
        if current is None:
            return NotFound()
        return PreconditionFailed(current)

    def conflict_error(self, serializer: BaseSerializer) -> ValidationError:
        """Turn a lost uniqueness race into the field errors validation now reports."""
        if not serializer.is_valid():
            return ValidationError(serializer.errors)
        return ValidationError({"non_field_errors": ["Conflicts with an existing object."]})

    # --- responses ------------------------------------------------------------------------

    def object_response(self, instance: models.Model, code: int) -> Response:
        body = self.get_serializer(instance).data
        return Response(body, status=code, headers={"ETag": f'"{instance.version}"'})
