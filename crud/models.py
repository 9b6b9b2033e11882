"""The `/crud` request envelope and its rules, checked before the backend is called."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.problems import FieldRuleError

ENTITY_TYPE_PATTERN = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_-]*$"
# No "__": a field name must not smuggle in a Django lookup of its own.
FIELD_PATTERN = r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$"
ENTITY_ID_PATTERN = r"^[A-Za-z0-9-]+$"
MAX_PAGE_SIZE = 1000


class Operation(enum.StrEnum):
    CREATE = "create"
    READ = "read"
    UPDATE = "update"
    DELETE = "delete"
    LIST = "list"
    RESTORE = "restore"


WRITES = frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE, Operation.RESTORE})


class FilterOperator(enum.StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    CONTAINS = "contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    IN = "in"
    NOT_IN = "not_in"
    IS_NULL = "is_null"


class SortOrder(enum.StrEnum):
    ASC = "asc"
    DESC = "desc"


Scalar = str | int | float | bool | None


class Filter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(pattern=FIELD_PATTERN, max_length=100)
    operator: FilterOperator = FilterOperator.EQ
    value: Scalar | list[Scalar] = None

    @model_validator(mode="after")
    def _value_fits_operator(self) -> Filter:
        wants_list = self.operator in (FilterOperator.IN, FilterOperator.NOT_IN)
        if wants_list and not isinstance(self.value, list):
            raise ValueError(f"operator {self.operator.value} needs a list value")
        if wants_list and not self.value:
            raise ValueError(f"operator {self.operator.value} needs at least one value")
        if self.value is None:
            raise ValueError("a null value matches nothing here: use operator is_null")
        if not wants_list and isinstance(self.value, list):
            raise ValueError(f"operator {self.operator.value} needs a single value")
        if self.operator is FilterOperator.IS_NULL and not isinstance(self.value, bool):
            raise ValueError("operator is_null needs true or false")
        return self


class Sort(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(pattern=FIELD_PATTERN, max_length=100)
    order: SortOrder = SortOrder.ASC


class CrudRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"operation": "list", "entity_type": "core.configurations"}]
        },
    )

    operation: Operation
    entity_type: str = Field(pattern=ENTITY_TYPE_PATTERN, max_length=100)
    # Ids become a backend URL path segment: only a plain token may get that far.
    entity_id: str | None = Field(None, min_length=1, max_length=100, pattern=ENTITY_ID_PATTERN)
    data: dict[str, Any] | None = None
    filters: list[Filter] = Field(default_factory=list, max_length=50)
    sort: list[Sort] = Field(default_factory=list, max_length=10)
    page: int = Field(1, ge=1, le=1_000_000)
    page_size: int = Field(50, ge=1, le=MAX_PAGE_SIZE)
    # Strict: lax parsing takes `true` as version 1 and "2" as 2, turning a caller's mistake
    # into a write conditional on a version they never named.
    version: int | None = Field(None, ge=1, strict=True)
    # Strict, as `version`: lax parsing takes "yes" or 1 as true, and a hard delete must be asked
    # for in so many words.
    include_inactive: bool = Field(False, strict=True)
    hard: bool = Field(
        False, strict=True, description="delete: remove the row instead of deactivating it"
    )
    replace: bool = Field(
        False, strict=True, description="update: replace every field (PUT) instead of PATCH"
    )

    @model_validator(mode="after")
    def _fields_fit_operation(self) -> CrudRequest:
        needs_id = self.operation not in (Operation.CREATE, Operation.LIST)
        if needs_id and self.entity_id is None:
            raise FieldRuleError("entity_id", f"entity_id is required for {self.operation.value}")
        if self.operation is Operation.CREATE and self.entity_id is not None:
            raise FieldRuleError("entity_id", "entity_id must not be given for create")
        needs_data = self.operation in (Operation.CREATE, Operation.UPDATE)
        if needs_data and not self.data:
            raise FieldRuleError("data", f"data is required for {self.operation.value}")
        if self.hard and self.operation is not Operation.DELETE:
            raise FieldRuleError("hard", "hard applies only to delete")
        if self.replace and self.operation is not Operation.UPDATE:
            raise FieldRuleError("replace", "replace applies only to update")
        return self
