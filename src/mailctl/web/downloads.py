"""CSV downloads of any size: checked first, then streamed from a read-only transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import StreamingResponse

from mailctl.db import session_scope
from mailctl.web.pages import db
from mailctl.web.state import panel


async def csv_download(
    request: Request,
    *,
    check: Callable[[Session], Any],
    pieces: Callable[[Session], Iterator[str]],
    filename: str,
) -> StreamingResponse:
    """`check` runs first in its own transaction, so that a refusal (not found, forbidden) is
    an ordinary error page; then the file is sent as `pieces` yields it, read from the
    database a batch at a time by a worker thread (Starlette runs a plain iterator off the
    event loop), and never held whole."""
    await db(request, check, readonly=True)
    engine = panel(request).engine

    def body() -> Iterator[bytes]:
        with session_scope(engine, readonly=True) as session:
            for piece in pieces(session):
                yield piece.encode("utf-8")

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
