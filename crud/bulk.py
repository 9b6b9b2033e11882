"""Bulk writes: up to 1,000 creates, updates, deletes or restores, each judged alone."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.problems import Problem, field_errors_from_pydantic

from .models import WRITES, CrudRequest
from .service import Caller, CrudService

MAX_BULK_ITEMS = 1000


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity_type: str | None = Field(None, description="default for items that name none")
    # Any JSON value, each judged alone: an item that is not an object fails by itself.
    items: list[Any] = Field(
        min_length=1,
        max_length=MAX_BULK_ITEMS,
        json_schema_extra={"items": {"type": "object"}},
    )


async def execute_bulk(
    service: CrudService, bulk: BulkRequest, caller: Caller, *, conflict_status: int = 409
) -> dict[str, Any]:
    """Items run in order, one at a time, so two items on one entity apply as written."""
    results = []
    for index, item in enumerate(bulk.items):
        outcome = await _one(service, bulk.entity_type, index, item, caller, conflict_status)
        results.append({"index": index, **outcome})
    failed = sum(1 for result in results if result["status"] >= 400)
    return {
        "results": results,
        "summary": {"total": len(results), "succeeded": len(results) - failed, "failed": failed},
    }


async def _one(
    service: CrudService,
    default_type: str | None,
    index: int,
    item: Any,
    caller: Caller,
    conflict_status: int,
) -> dict[str, Any]:
    try:
        request = _parse(default_type, index, item)
        result = await service.execute(request, caller, conflict_status=conflict_status)
    except Problem as problem:
        return {"status": problem.status, "error": problem.body()}
    outcome: dict[str, Any] = {"status": result.status}
    if result.body is not None:
        outcome["data"] = result.body["data"]
    return outcome


def _parse(default_type: str | None, index: int, item: Any) -> CrudRequest:
    # Like an envelope that fails validation, such an item names no operation to audit.
    if not isinstance(item, dict):
        raise Problem(
            422,
            f"Item {index} is not a JSON object.",
            errors=[{"field": f"items.{index}", "message": "Must be a JSON object."}],
        )

    fields = {"entity_type": default_type, **item} if default_type else item
    try:
        request = CrudRequest.model_validate(fields)
    except ValidationError as exc:
        raise Problem(
            422, "The item failed validation.", errors=field_errors_from_pydantic(exc.errors())
        ) from exc
    if request.operation not in WRITES:
        raise Problem(
            422,
            "Bulk items are writes: create, update, delete or restore.",
            errors=[{"field": "operation", "message": "not a write"}],
        )
    return request
