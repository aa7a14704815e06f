"""A cap on a request's body, for forms that carry a file."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message


def limited(request: Request, limit: int) -> Request:
    """The request with a body cap: Starlette bounds text fields but not file parts, which it
    spools to disk however large they are. Past `limit` bytes in all, a 413."""
    too_large = f"the upload is too large (at most {limit} bytes in all)"
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise HTTPException(413, too_large)
    received = 0
    receive = request.receive

    async def capped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:  # chunked bodies carry no Content-Length
                raise HTTPException(413, too_large)
        return message

    return Request(request.scope, capped)
