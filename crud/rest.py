"""REST routes in Django REST framework's shape, served by the same CrudService.

`GET|POST /api/<app>/<resource>/`, `GET|PATCH|PUT|DELETE /api/<app>/<resource>/<id>/`,
`POST .../<id>/restore/` and `POST /api/<app>/<resource>/bulk/`. Filters are the
backend's own lookups (`name__icontains=ops`), mapped back to `/crud` operators so
both surfaces run through one validation and one backend call.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import ValidationError

from service.json_route import CheckedRoute
from service.problems import Problem, field_errors_from_pydantic
from service.request_limits import bounded_page_size, check_query_values

from .bulk import BulkRequest, execute_bulk
from .models import ENTITY_ID_PATTERN, CrudRequest, FilterOperator, Operation
from .query import LOOKUP_SUFFIX
from .service import CrudService
from .surface import caller_of, idempotent, respond

router = APIRouter(
    prefix="/api/{app}/{resource}",
    tags=["rest"],
    route_class=CheckedRoute,
)

# The read's path; read_route.py serves it first, for paths whose parameters are valid.
READ_PATH = "/api/{app}/{resource}/{entity_id}/"
OPERATOR_OF_SUFFIX = {suffix: operator for operator, suffix in LOOKUP_SUFFIX.items() if suffix}
LIST_PARAMETERS = frozenset({"page", "page_size", "ordering", "include_inactive"})
# The two halves of an entity type (models.ENTITY_TYPE_PATTERN) and an id, checked on the path;
# the examples give the docs' "Try it out" a type that exists.
APP_PATTERN, RESOURCE_PATTERN = r"^[a-z][a-z0-9_]*$", r"^[a-z][a-z0-9_-]*$"
NAME_MAX_LENGTH = 50
ENTITY_ID_MAX_LENGTH = 100
App = Annotated[
    str,
    Path(
        pattern=APP_PATTERN,
        max_length=NAME_MAX_LENGTH,
        openapi_examples={"notification": {"value": "notification"}},
    ),
]
Resource = Annotated[
    str,
    Path(
        pattern=RESOURCE_PATTERN,
        max_length=NAME_MAX_LENGTH,
        openapi_examples={"channels": {"value": "channels"}},
    ),
]
EntityId = Annotated[str, Path(pattern=ENTITY_ID_PATTERN, max_length=ENTITY_ID_MAX_LENGTH)]
IF_MATCH = re.compile(r'^(?:W/)?"?(\d{1,18})"?$')
# These routes read their body themselves (see _json_object): say in the OpenAPI what it is.
JSON_OBJECT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}
BULK_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["items"],
                    "properties": {"items": {"type": "array", "items": {"type": "object"}}},
                }
            }
        },
    }
}


@router.get("/", summary="List entities")
async def list_entities(app: App, resource: Resource, request: Request) -> Response:
    check_query_values(request)
    fields: dict[str, Any] = {"operation": "list", "entity_type": f"{app}.{resource}"}
    fields |= _list_fields(request)
    try:
        return await _run(request, fields)
    except Problem as problem:
        _name_query_parameters(problem, _filter_parameters(request))
        raise


@router.post("/", summary="Create an entity", status_code=201, openapi_extra=JSON_OBJECT_BODY)
async def create_entity(app: App, resource: Resource, request: Request) -> Response:
    data = await _json_object(request)
    fields = {"operation": "create", "entity_type": f"{app}.{resource}", "data": data}

    async def run() -> tuple[int, Any, dict[str, str]]:
        result = await _service(request).execute(_crud_request(fields), caller_of(request))
        return result.status, result.body, result.headers

    return await idempotent(request, data, run)


@router.post(
    "/bulk/", summary="Up to 1,000 writes, each with its own status", openapi_extra=BULK_BODY
)
async def bulk_entities(app: App, resource: Resource, request: Request) -> Response:
    body = await _json_object(request)
    try:
        bulk = BulkRequest.model_validate({**body, "entity_type": f"{app}.{resource}"})
    except ValidationError as exc:
        raise _invalid(exc) from exc

    async def run() -> tuple[int, Any, dict[str, str]]:
        return 200, await execute_bulk(_service(request), bulk, caller_of(request)), {}

    return await idempotent(request, body, run)


@router.get(READ_PATH.removeprefix(router.prefix), summary="Read an entity")
async def read_entity(
    app: App, resource: Resource, entity_id: EntityId, request: Request
) -> Response:
    fields = _one(app, resource, entity_id, "read")
    fields["include_inactive"] = _switch(request, "include_inactive")
    return await _run(request, fields)


@router.patch(
    "/{entity_id}/", summary="Change some fields of an entity", openapi_extra=JSON_OBJECT_BODY
)
async def patch_entity(
    app: App, resource: Resource, entity_id: EntityId, request: Request
) -> Response:
    fields = _one(app, resource, entity_id, "update") | {"data": await _json_object(request)}
    return await _run(request, fields | _precondition(request))


@router.put("/{entity_id}/", summary="Replace an entity", openapi_extra=JSON_OBJECT_BODY)
async def put_entity(
    app: App, resource: Resource, entity_id: EntityId, request: Request
) -> Response:
    fields = _one(app, resource, entity_id, "update") | {"data": await _json_object(request)}
    return await _run(request, fields | {"replace": True} | _precondition(request))


@router.delete(
    "/{entity_id}/",
    summary="Deactivate an entity, or remove it with ?hard=true",
    status_code=204,
)
async def delete_entity(
    app: App, resource: Resource, entity_id: EntityId, request: Request
) -> Response:
    fields = _one(app, resource, entity_id, "delete") | {"hard": _switch(request, "hard")}
    return await _run(request, fields | _precondition(request))


@router.post("/{entity_id}/restore/", summary="Bring a deactivated entity back")
async def restore_entity(
    app: App, resource: Resource, entity_id: EntityId, request: Request
) -> Response:
    fields = _one(app, resource, entity_id, "restore")
    return await _run(request, fields | _precondition(request))


async def _run(request: Request, fields: dict[str, Any]) -> Response:
    crud_request = _crud_request(fields)
    if crud_request.operation is Operation.LIST:
        given = "page_size" in request.query_params
        crud_request.page_size = bounded_page_size(request, crud_request.page_size, given=given)
    result = await _service(request).execute(crud_request, caller_of(request), conflict_status=412)
    return respond(result)


def _service(request: Request) -> CrudService:
    return request.app.state.crud


def _one(app: str, resource: str, entity_id: str, operation: str) -> dict[str, Any]:
    return {"operation": operation, "entity_type": f"{app}.{resource}", "entity_id": entity_id}


def _crud_request(fields: dict[str, Any]) -> CrudRequest:
    try:
        return CrudRequest.model_validate(fields)
    except ValidationError as exc:
        raise _invalid(exc) from exc


def _list_fields(request: Request) -> dict[str, Any]:
    params = request.query_params
    fields: dict[str, Any] = {"include_inactive": _switch(request, "include_inactive")}
    for name in ("page", "page_size"):
        if name in params:
            fields[name] = params[name]
    if ordering := params.get("ordering"):
        fields["sort"] = [
            {"field": part.lstrip("-"), "order": "desc" if part.startswith("-") else "asc"}
            for part in ordering.split(",")
        ]
    fields["filters"] = [_filter(name, value) for name, value in _filter_parameters(request)]
    return fields


def _filter_parameters(request: Request) -> list[tuple[str, str]]:
    """The query's filters, in order: every parameter but the list's own."""
    params = request.query_params.multi_items()
    return [(name, value) for name, value in params if name not in LIST_PARAMETERS]


def _name_query_parameters(problem: Problem, filters: list[tuple[str, str]]) -> None:
    """Name in the errors the query parameters the caller wrote, not the `/crud` fields they
    became: `filters.1.port` is the second filter parameter (`port__gte`), `sort.0.x` is
    `ordering`."""
    for error in problem.errors or ():
        head, _, rest = str(error.get("field", "")).partition(".")
        index = rest.partition(".")[0]
        if head == "sort":
            error["field"] = "ordering"
        elif head == "filters" and index.isdigit() and int(index) < len(filters):
            error["field"] = filters[int(index)][0]


def _filter(name: str, value: str) -> dict[str, Any]:
    field, operator = name, FilterOperator.EQ
    if "__" in name:
        field, _, lookup = name.rpartition("__")
        operator = OPERATOR_OF_SUFFIX.get(f"__{lookup}")
        if operator is None:
            raise Problem(
                422,
                f"Unknown lookup {lookup!r}.",
                errors=[{"field": name, "message": "unknown lookup"}],
            )
    if operator in (FilterOperator.IN, FilterOperator.NOT_IN):
        return {"field": field, "operator": operator, "value": value.split(",")}
    if operator is FilterOperator.IS_NULL:
        return {"field": field, "operator": operator, "value": _boolean(name, value)}
    return {"field": field, "operator": operator, "value": value}


def _precondition(request: Request) -> dict[str, Any]:
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return {}
    match = IF_MATCH.match(header.strip())
    if match is None:
        raise Problem(
            400,
            'If-Match must name one version, like "3".',
            errors=[{"field": "If-Match", "message": "not a version"}],
        )
    return {"version": int(match.group(1))}


def _switch(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    return False if value is None else _boolean(name, value)


def _boolean(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise Problem(422, f"{name} must be true or false.", errors=[{"field": name, "message": value}])


async def _json_object(request: Request) -> dict[str, Any]:
    body = await request.json()  # read, bounded and parsed strictly by CheckedRoute
    if not isinstance(body, dict):
        raise Problem(
            422,
            "The request body must be a JSON object.",
            errors=[{"field": "body", "message": "not an object"}],
        )
    return body


def _invalid(exc: ValidationError) -> Problem:
    errors = field_errors_from_pydantic(exc.errors())
    return Problem(422, "The request failed validation.", errors=errors)
