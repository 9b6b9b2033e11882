"""Each `/crud` operator maps to exactly one Django lookup."""

import pytest
from pydantic import ValidationError

from crud.models import CrudRequest
from crud.query import list_params


def params_for(**kwargs):
    return list_params(CrudRequest(operation="list", entity_type="core.configurations", **kwargs))


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("eq", "a", {"key": "a"}),
        ("ne", "a", {"key__ne": "a"}),
        ("gt", 3, {"key__gt": "3"}),
        ("gte", 3, {"key__gte": "3"}),
        ("lt", 2.5, {"key__lt": "2.5"}),
        ("lte", 2.5, {"key__lte": "2.5"}),
        ("contains", "x", {"key__icontains": "x"}),
        ("starts_with", "x", {"key__istartswith": "x"}),
        ("ends_with", "x", {"key__iendswith": "x"}),
        ("in", ["a", "b"], {"key__in": "a,b"}),
        ("not_in", ["a", "b"], {"key__not_in": "a,b"}),
        ("is_null", True, {"key__isnull": "true"}),
    ],
)
def test_operator_maps_to_lookup(operator, value, expected) -> None:
    params = params_for(filters=[{"field": "key", "operator": operator, "value": value}])
    assert params == {"page": 1, "page_size": 50, **expected}


def test_sort_becomes_ordering_and_inactive_flag_passes() -> None:
    params = params_for(
        sort=[{"field": "name", "order": "desc"}, {"field": "created_at"}],
        include_inactive=True,
        page=2,
        page_size=10,
    )
    assert params == {
        "page": 2,
        "page_size": 10,
        "ordering": "-name,created_at",
        "include_inactive": "true",
    }


@pytest.mark.parametrize(
    "bad_filter",
    [
        {"field": "key", "operator": "in", "value": "a"},
        {"field": "key", "operator": "eq", "value": ["a"]},
        {"field": "key", "operator": "is_null", "value": "yes"},
        {"field": "key;drop", "operator": "eq", "value": "a"},
        {"field": "key", "operator": "like", "value": "a"},
    ],
)
def test_bad_filters_are_refused(bad_filter) -> None:
    with pytest.raises(ValidationError):
        params_for(filters=[bad_filter])
