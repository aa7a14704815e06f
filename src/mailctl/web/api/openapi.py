"""The OpenAPI 3.1 document, made from the operations table and the pydantic models that the
routes validate with (pydantic writes JSON Schema 2020-12, which OpenAPI 3.1 uses as is)."""

from __future__ import annotations

from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from mailctl import __version__
from mailctl.services.validation import ID_MAX
from mailctl.web.api.framework import NAME_MAX, Operation
from mailctl.web.api.problems import PROBLEM_TYPE, Problem

BASE = "/api/v1"
REF = "#/components/schemas/{model}"
ERRORS = {
    400: "The request is refused: a service rule (a bad address, a time in the past...)",
    401: "No API key, or one that is unknown, revoked, or of a blocked user",
    403: "The key's user may not do this, or the key is read-only",
    404: "No such object, or another user's",
    409: "It conflicts with what exists (a duplicate email, an object in use)",
    413: "The body is too large",
    415: "The body is not JSON",
    422: "The body or the query does not fit the schema; `field` names the first at fault",
    429: "Over the key's rate limit; retry after Retry-After seconds",
}


def _model_of(response: Any) -> tuple[type[BaseModel] | None, bool]:
    """(the model, whether a list of it) of an operation's response."""
    if response is None:
        return None, False
    if get_origin(response) is list:
        (item,) = get_args(response)
        return item, True
    return response, False


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema: absent means "not given", so an optional's null goes."""
    schema = {k: v for k, v in schema.items() if k not in ("title", "default")}
    options = schema.get("anyOf")
    if options:
        rest = [o for o in options if o.get("type") != "null"]
        if len(rest) == 1:
            schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **rest[0]}
    return schema


def _parameters(op: Operation) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name in op.path_params:
        schema: dict[str, Any] = (
            {"type": "integer", "minimum": 1, "maximum": ID_MAX - 1}
            if name.endswith("_id")
            else {"type": "string", "minLength": 1, "maxLength": NAME_MAX}
        )
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    if op.query is not None:
        schema = op.query.model_json_schema()
        for name, prop in schema.get("properties", {}).items():
            param = {"name": name, "in": "query", "required": False, "schema": _plain(prop)}
            if "description" in prop:
                param["description"] = prop["description"]
            params.append(param)
    return params


def document(operations: list[Operation]) -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Any]] = [(Problem, "serialization")]
    for op in operations:
        if op.body is not None:
            models.append((op.body, "validation"))
        model, _ = _model_of(op.response)
        if model is not None:
            models.append((model, "serialization"))
    unique = list(dict.fromkeys(models))
    refs, defs = models_json_schema(unique, ref_template=REF)
    problem_ref = refs[(Problem, "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        responses: dict[str, Any] = {}
        model, many = _model_of(op.response)
        if model is None:
            responses[str(204 if op.status == 200 else op.status)] = {"description": "Done"}
        else:
            schema = refs[(model, "serialization")]
            content = {"type": "array", "items": schema} if many else schema
            responses[str(op.status)] = {
                "description": op.summary,
                "content": {"application/json": {"schema": content}},
            }
        for status, why in ERRORS.items():
            if status in (413, 415) and op.body is None:
                continue
            if status == 422 and op.body is None and op.query is None:
                continue
            error: dict[str, Any] = {
                "description": why,
                "content": {PROBLEM_TYPE: {"schema": problem_ref}},
            }
            if status == 429:
                error["headers"] = {
                    "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}
                }
            responses[str(status)] = error
        entry: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": _parameters(op),
            "responses": responses,
        }
        if op.description:
            entry["description"] = op.description
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mailctl API",
            "version": __version__,
            "description": "Clients, messages, mailings and their reports over HTTP. Every call "
            "acts as the API key's user, with that user's role, through the same rules as the "
            "CLI and the panel. Errors are RFC 9457 problem details.",
        },
        "servers": [{"url": BASE}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API key from `mailctl apikey add` or the account page",
                }
            },
        },
    }
