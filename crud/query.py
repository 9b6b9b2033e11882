"""Turns `/crud` filters and sort into the backend's Django lookups, one to one."""

from __future__ import annotations

from typing import Any

from .models import CrudRequest, Filter, FilterOperator, SortOrder

LOOKUP_SUFFIX = {
    FilterOperator.EQ: "",
    FilterOperator.NE: "__ne",
    FilterOperator.GT: "__gt",
    FilterOperator.GTE: "__gte",
    FilterOperator.LT: "__lt",
    FilterOperator.LTE: "__lte",
    FilterOperator.CONTAINS: "__icontains",
    FilterOperator.STARTS_WITH: "__istartswith",
    FilterOperator.ENDS_WITH: "__iendswith",
    FilterOperator.IN: "__in",
    FilterOperator.NOT_IN: "__not_in",
    FilterOperator.IS_NULL: "__isnull",
}


def list_params(request: CrudRequest) -> dict[str, Any]:
    params: dict[str, Any] = {"page": request.page, "page_size": request.page_size}
    for item in request.filters:
        params[item.field + LOOKUP_SUFFIX[item.operator]] = _encode(item)
    if request.sort:
        params["ordering"] = ",".join(
            ("-" if sort.order is SortOrder.DESC else "") + sort.field for sort in request.sort
        )
    if request.include_inactive:
        params["include_inactive"] = "true"
    return params


def _encode(item: Filter) -> str:
    if isinstance(item.value, list):
        return ",".join(_scalar(value) for value in item.value)
    return _scalar(item.value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)
