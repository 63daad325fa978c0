"""Every error status a route can answer, in the OpenAPI, with HQ's error schema.

A route names the errors its service raises (``responses=raises(errors.Conflict)``); what the
edge itself answers is derived from the route's shape: 401 and 503 behind the token gate, 403
when its role dependency admits fewer than every role, 404 with path parameters, 422 with any
parameter or body, 413 and 415 with a JSON body, 500 everywhere. Each of these statuses gets
the ``Error`` schema (``hq.schemas.errors.ErrorBody``), replacing FastAPI's own 422 model, which
is not what HQ answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from hq import errors
from hq.schemas.common import Role
from hq.schemas.errors import ErrorBody
from hq.server.edge.gate import is_public

ERROR_REF = {"$ref": "#/components/schemas/Error"}
DESCRIPTIONS = {
    400: "Malformed request (e.g. a bad cursor, a broken upload)",
    401: "No valid bearer token",
    403: "The token's role may not do this",
    404: "No such resource",
    409: "Not in a state that allows this",
    413: "Body over the server's limit",
    415: "Body not sent as JSON",
    422: "Invalid value: 'field' names it",
    500: "HQ failed; quote the request_id",
    503: "The database is unavailable; retry (Retry-After)",
}


def raises(*classes: type[errors.HQError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route whose service raises ``classes``."""
    return {
        cls.status_code: {"description": DESCRIPTIONS.get(cls.status_code, cls.__doc__)}
        for cls in classes
    }


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def statuses(route: RouteContext) -> set[int]:
    """The error statuses the edge and FastAPI can answer for ``route``."""
    found = {500}
    dependant = route.dependant
    if not is_public(route.path_format or ""):
        found |= {401, 503}
    roles = [getattr(call, "hq_roles", None) for call in _calls(dependant)]
    if any(r is not None and set(r) != set(Role) for r in roles):
        found.add(403)
    if dependant.path_params:
        found |= {404, 422}
    if dependant.query_params or dependant.header_params or dependant.cookie_params:
        found.add(422)
    if dependant.body_params:
        found |= {413, 415, 422}
    return found


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS.get(status, "Error"),
        "content": {"application/json": {"schema": ERROR_REF}},
    }


def _document(schema: dict[str, Any], routes: list[RouteContext]) -> None:
    for route in routes:
        for method in route.methods or ():
            operation = schema["paths"][route.path_format][method.lower()]
            responses: dict[str, Any] = operation.setdefault("responses", {})
            declared = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
            for status in sorted(statuses(route) | declared):
                entry = responses.get(str(status))
                if status == 422 or entry is None or "content" not in entry:
                    description = (entry or {}).get("description") or DESCRIPTIONS.get(status)
                    responses[str(status)] = {
                        **_error_response(status),
                        "description": description or "Error",
                    }
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` document every route's error statuses."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            routes = [
                r
                for r in iter_route_contexts(app.routes)
                if isinstance(r.original_route, APIRoute) and r.include_in_schema
            ]
            _document(schema, routes)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
