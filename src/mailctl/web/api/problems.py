"""Errors as RFC 9457 problem details (application/problem+json), the API's only error shape."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field
from starlette.responses import Response

PROBLEM_TYPE = "application/problem+json"
# A problem type per status, under the API's own docs page (RFC 9457 allows relative URIs;
# "about:blank" would say nothing more than the status).
TYPE_BASE = "/api/v1/docs#problem-"


class FieldError(BaseModel):
    field: str = Field(description="the field, dotted for nested ones (attrs.city, clients.3)")
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="a URI naming the kind of problem")
    title: str
    status: int
    detail: str
    field: str | None = Field(default=None, description="the first field at fault")
    errors: list[FieldError] | None = Field(default=None, description="every field at fault")


def problem(
    status: int,
    detail: str,
    *,
    field: str | None = None,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    phrase = HTTPStatus(status).phrase
    body = Problem(
        type=f"{TYPE_BASE}{phrase.lower().replace(' ', '-')}",
        title=phrase,
        status=status,
        detail=detail,
        field=field,
        errors=errors,
    )
    return Response(
        json.dumps(body.model_dump(mode="json", exclude_none=True)),
        status_code=status,
        media_type=PROBLEM_TYPE,
        headers=headers,
    )


def field_errors(errors: Sequence[Any], prefix: str = "") -> list[FieldError]:
    """pydantic's errors as (field, detail), fields dotted the way the request named them."""
    found = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()))
        found.append(FieldError(field=f"{prefix}{where}" or "body", detail=str(error["msg"])))
    return found
