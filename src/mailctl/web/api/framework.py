"""How an API operation is declared and run: one table of operations serves both the routes
and the OpenAPI document, so the document cannot drift from what the code accepts.

Each operation names its request and response pydantic models and a `work` function that
gets a `Call` (the caller, the validated body and query, an open transaction) and calls the
services. Everything around it happens here, once: the key (Authorization: Bearer, never a
cookie), the key's scope and rate limit, JSON parsing and validation, the transaction on a
worker thread, and every error as problem+json.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mailctl.db import session_scope
from mailctl.errors import Invalid, MailctlError, NotFound, Throttled, Unauthorized
from mailctl.models import User
from mailctl.services import apikeys
from mailctl.services.apikeys import Caller
from mailctl.services.validation import ID_MAX
from mailctl.web.api.limits import RateLimit
from mailctl.web.api.problems import field_errors, problem
from mailctl.web.state import PanelState, panel

log = logging.getLogger(__name__)
MAX_BODY = 2_000_000  # bytes of JSON in one request (a bulk import of a few thousand rows)
JSON_TYPES = ("application/json", "application/problem+json")
NO_KEY = "send an API key: Authorization: Bearer mk_... (make one with `mailctl apikey add`)"


class FieldInvalid(Invalid):
    """A refusal of one field's value that the adapter itself found (a time it cannot read)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class BodyTooLarge(MailctlError):
    http_status = 413


class WrongMediaType(MailctlError):
    http_status = 415


@dataclass
class Call:
    """What an operation's work gets: the caller (the key's user, with its role), the path's
    ids, the validated query and body, the transaction, and actions to run after commit."""

    session: Session
    caller: Caller
    state: PanelState
    ids: dict[str, int]  # the path's {x_id} parts
    names: dict[str, str]  # its other parts ({name} of a tag)
    query: Any
    body: Any
    after: list[Callable[[], object]] = field(default_factory=list)
    result: Any = None

    @property
    def user(self) -> User:
        return self.caller.user


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as OpenAPI writes it: /clients/{client_id}
    work: Callable[[Call], Any]
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None  # a model, list[Model], or None for 204
    status: int = 200
    description: str = ""

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    @property
    def operation_id(self) -> str:
        return self.work.__name__.strip("_")

    @property
    def path_params(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(NO_KEY)
    return token.strip()


async def _read_body(request: Request) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise BodyTooLarge(f"the request body is too large (at most {MAX_BODY} bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise BodyTooLarge(f"the request body is too large (at most {MAX_BODY} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


NAME_MAX = 200


def _path(op: Operation, request: Request) -> tuple[dict[str, int], dict[str, str]]:
    """Ids (a number the database can hold, else nothing by that id exists) and names."""
    ids, names = {}, {}
    for name in op.path_params:
        raw = str(request.path_params.get(name, ""))
        if name.endswith("_id"):
            if not raw.isdigit() or not 0 < int(raw) < ID_MAX:
                raise NotFound("not found")
            ids[name] = int(raw)
        else:
            if not raw or len(raw) > NAME_MAX:
                raise NotFound("not found")
            names[name] = raw
    return ids, names


def _validate(model: type[BaseModel] | None, data: Any, where: str) -> Any:
    if model is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _Unprocessable(field_errors(exc.errors(include_url=False), where)) from None


class _Unprocessable(Exception):
    def __init__(self, errors: Any) -> None:
        super().__init__("validation failed")
        self.errors = errors


def _parse_json(op: Operation, request: Request, raw: bytes) -> Any:
    if op.body is None:
        return None
    media = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if raw and media.lower() not in JSON_TYPES:
        raise WrongMediaType(f"send JSON (Content-Type: application/json), not {media}")
    try:
        if not raw.strip():
            raise Invalid("this call needs a JSON body")
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid(f"the body is not valid JSON: {exc}") from None


def _run(op: Operation, state: PanelState, limiter: RateLimit, token: str, **parts: Any) -> Call:
    """The call on a worker thread: the key first (its own short transaction, which may note
    its last use), then the scope, the rate, the input, and the work in one transaction."""
    with session_scope(state.engine) as session:
        caller = apikeys.authenticate(session=session, token=token, secret=state.links.secret)
    limiter.hit(caller.key_id)
    if op.writes:
        apikeys.require_write(caller)
    query = _validate(op.query, parts["query"], "")
    body = _validate(op.body, parts["body"], "")
    with session_scope(state.engine, readonly=not op.writes) as session:
        call = Call(session, caller, state, parts["ids"], parts["names"], query, body)
        # Dumped inside the transaction: a response may read what the work left lazy.
        result = op.work(call)
        session.flush()
        call.result = _dump(op, result)
    return call


_ADAPTERS: dict[int, TypeAdapter[Any]] = {}


def _dump(op: Operation, result: Any) -> bytes | None:
    if op.response is None:
        return None
    adapter = _ADAPTERS.get(id(op))
    if adapter is None:
        adapter = _ADAPTERS[id(op)] = TypeAdapter(op.response)
    return adapter.dump_json(result)


def _field_named(op: Operation, message: str) -> str | None:
    """The body field a service's refusal is about, when its message names one ("full name
    is too long", "invalid email ..."): the services speak to people, not to field names."""
    fields = list(op.body.model_fields) if op.body is not None else []
    text = message.lower()
    for name in fields:
        spoken = name.replace("_", " ")
        if text.startswith((f"{spoken} ", f"invalid {spoken} ", f"cannot read {spoken}")):
            return name
    return None


def to_problem(exc: Exception) -> Response:
    if isinstance(exc, _Unprocessable):
        first = exc.errors[0]
        return problem(
            422,
            f"{first.field}: {first.detail}",
            field=first.field,
            errors=exc.errors,
        )
    if isinstance(exc, Throttled):
        return problem(429, str(exc), headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, Unauthorized):
        return problem(401, str(exc), headers={"WWW-Authenticate": 'Bearer realm="mailctl"'})
    if isinstance(exc, MailctlError):
        return problem(exc.http_status, str(exc))
    if isinstance(exc, HTTPException):
        return problem(exc.status_code, str(exc.detail), headers=exc.headers)
    if isinstance(exc, IntegrityError):
        reason = str(exc.orig).splitlines()[0] if exc.orig else "constraint failed"
        return problem(409, f"refused by the database: {reason}")
    if isinstance(exc, OverflowError):
        return problem(404, "not found")
    log.exception("API call failed", exc_info=exc)
    return problem(500, "the server failed to answer this call; it is logged")


def endpoint(op: Operation, limiter: RateLimit) -> Callable[[Request], Any]:
    async def handle(request: Request) -> Response:
        try:
            token = _bearer(request)
            ids, names = _path(op, request)
            raw = await _read_body(request) if op.body is not None else b""
            body = _parse_json(op, request, raw)
            query = dict(request.query_params)
            call = await run_in_threadpool(
                _run,
                op,
                panel(request),
                limiter,
                token,
                ids=ids,
                names=names,
                query=query,
                body=body,
            )
        except Invalid as exc:
            named = exc.field if isinstance(exc, FieldInvalid) else _field_named(op, str(exc))
            return problem(400, str(exc), field=named)
        except Exception as exc:  # every failure answers as problem+json
            return to_problem(exc)
        for action in call.after:
            action()
        if call.result is None:
            return Response(status_code=204)
        return Response(call.result, status_code=op.status, media_type="application/json")

    handle.__name__ = op.operation_id
    return handle


def routes(operations: list[Operation], limiter: RateLimit, prefix: str) -> list[Route]:
    """One route per path whatever its methods, so that a 405 lists every method the path
    has in its Allow header (Starlette's per-method routes would name only the first's)."""
    by_path: dict[str, dict[str, Callable[[Request], Any]]] = {}
    for op in operations:
        by_path.setdefault(op.path, {})[op.method] = endpoint(op, limiter)
    return [
        Route(prefix + path, _dispatch(handlers), methods=EVERY_METHOD)
        for path, handlers in by_path.items()
    ]


# Every method reaches the dispatcher, which answers 405 with the path's own Allow list.
EVERY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


def _dispatch(handlers: dict[str, Callable[[Request], Any]]) -> Callable[[Request], Any]:
    allowed = sorted({*handlers, *(["HEAD"] if "GET" in handlers else [])})

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        handler = handlers.get(method)
        if handler is None:
            return problem(
                405,
                f"{request.method} is not allowed here; use {', '.join(allowed)}",
                headers={"Allow": ", ".join(allowed)},
            )
        response: Response = await handler(request)
        return response

    return dispatch
