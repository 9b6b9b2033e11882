"""Filter and ordering generated for every model by one factory, strict about bad input.

Each non-JSON field `f` gets `f`, `f__ne`, `f__in`, `f__not_in`, `f__isnull`; ordered types add
`__gt/__gte/__lt/__lte`, text adds `__icontains/__istartswith/__iendswith`. Foreign keys and
many-to-many fields filter by the related id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import django_filters
from django import forms
from django.db import models
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request

EQUALITY_LOOKUPS = ("exact", "ne", "in", "not_in", "isnull")
RANGE_LOOKUPS = ("gt", "gte", "lt", "lte")
TEXT_LOOKUPS = ("icontains", "istartswith", "iendswith")

# Our lookups that Django lacks, as (the Django lookup they negate).
NEGATED_LOOKUPS = {"ne": "exact", "not_in": "in"}

TEXT_FIELDS = (models.CharField, models.TextField)
UNORDERED_FIELDS = (models.BooleanField, models.UUIDField, models.ForeignKey)
TRUE_WORDS = {"true", "1"}
FALSE_WORDS = {"false", "0"}


class StrictBooleanField(forms.Field):
    """A form field for `true`/`false` that rejects anything else instead of ignoring it."""

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        word = str(value).lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise forms.ValidationError("Enter true or false.")


class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


class StrictFilterSet(django_filters.FilterSet):
    # django-filter's own boolean filter turns an unknown word into "no filter", which
    # would silently return every row for a typo like `is_active=ture`.
    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.BooleanField: {"filter_class": StrictBooleanFilter},
    }


def lookups_for(field: models.Field) -> tuple[str, ...]:
    """The lookups a field supports, by its type."""
    if isinstance(field, models.ManyToManyField):
        return EQUALITY_LOOKUPS
    if isinstance(field, TEXT_FIELDS) and not field.choices:
        return EQUALITY_LOOKUPS + RANGE_LOOKUPS + TEXT_LOOKUPS
    if isinstance(field, TEXT_FIELDS):
        return EQUALITY_LOOKUPS + TEXT_LOOKUPS
    if isinstance(field, UNORDERED_FIELDS):
        return EQUALITY_LOOKUPS
    return EQUALITY_LOOKUPS + RANGE_LOOKUPS


def filterable_fields(model: type[models.Model]) -> Iterable[models.Field]:
    """Every concrete or many-to-many field except JSON ones."""
    for field in model._meta.get_fields():
        if field.auto_created and not field.concrete:
            continue
        if isinstance(field, models.JSONField):
            continue
        yield field


def build_filter(field: models.Field, lookup: str) -> django_filters.Filter:
    """One filter for `field` and `lookup`, negated for `ne` and `not_in`."""
    django_lookup = NEGATED_LOOKUPS.get(lookup, lookup)
    # Relations filter on the related primary key, so an unknown id matches nothing
    # instead of failing as an invalid choice.
    value_field = field.target_field if field.is_relation else field
    built = StrictFilterSet.filter_for_field(value_field, field.name, django_lookup)
    built.exclude = lookup in NEGATED_LOOKUPS
    built.distinct = isinstance(field, models.ManyToManyField)
    return built


def filterset_for(model: type[models.Model]) -> type[StrictFilterSet]:
    """Generate the filter set for `model`."""
    declared: dict[str, Any] = {}
    for field in filterable_fields(model):
        for lookup in lookups_for(field):
            name = field.name if lookup == "exact" else f"{field.name}__{lookup}"
            declared[name] = build_filter(field, lookup)

    meta = type("Meta", (), {"model": model, "fields": []})
    return type(f"{model.__name__}FilterSet", (StrictFilterSet,), {**declared, "Meta": meta})


class StrictOrderingFilter(OrderingFilter):
    """`ordering=-a,b` on any model field; an unknown field is a 400, not ignored."""

    ordering_fields = "__all__"

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> Any:
        raw = request.query_params.get(self.ordering_param)
        if raw is None:
            return self.get_default_ordering(view)

        terms = [term.strip() for term in raw.split(",") if term.strip()]
        known = {name for name, _ in self.get_valid_fields(queryset, view, {"request": request})}
        unknown = [term for term in terms if term.lstrip("-") not in known]
        if not terms:
            raise ValidationError({self.ordering_param: ["Name at least one field."]})
        if unknown:
            message = f"Unknown ordering field(s): {', '.join(unknown)}."
            raise ValidationError({self.ordering_param: [message]})

        # The id breaks ties, so pages never overlap or skip rows.
        return [*terms, "id"]
