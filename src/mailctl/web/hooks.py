"""Relay webhooks: POST /hooks/ses (Amazon SNS), /hooks/postmark, /hooks/sendgrid,
/hooks/mailgun and /hooks/generic. No session and no CSRF token: each relay proves itself
(services/hook_auth.py). Answers are JSON; a refusal says why in one line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mailctl.errors import Invalid, MailctlError
from mailctl.services import hook_events
from mailctl.web.pages import db
from mailctl.web.state import panel

Receive = Callable[[Session, Request, bytes], hook_events.Received]


async def _body(request: Request) -> bytes:
    # Read at most one byte past the limit: a huge body costs no more than that.
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > hook_events.MAX_BODY_BYTES:
            raise Invalid(f"the body is larger than {hook_events.MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _endpoint(receive: Receive) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            body = await _body(request)
            received = await db(request, lambda session: receive(session, request, body))
        except MailctlError as exc:
            status = 413 if "larger than" in str(exc) else exc.http_status
            return JSONResponse({"error": str(exc)}, status_code=status)
        return JSONResponse(received.as_dict())

    return endpoint


def _ses(session: Session, request: Request, body: bytes) -> hook_events.Received:
    return hook_events.receive_sns(session, settings=panel(request).settings, body=body)


def _postmark(session: Session, request: Request, body: bytes) -> hook_events.Received:
    return hook_events.receive_postmark(
        session,
        settings=panel(request).settings,
        body=body,
        authorization=request.headers.get("authorization", ""),
    )


def _sendgrid(session: Session, request: Request, body: bytes) -> hook_events.Received:
    return hook_events.receive_sendgrid(
        session,
        settings=panel(request).settings,
        body=body,
        timestamp=request.headers.get("x-twilio-email-event-webhook-timestamp", ""),
        signature=request.headers.get("x-twilio-email-event-webhook-signature", ""),
    )


def _mailgun(session: Session, request: Request, body: bytes) -> hook_events.Received:
    return hook_events.receive_mailgun(session, settings=panel(request).settings, body=body)


def _generic(session: Session, request: Request, body: bytes) -> hook_events.Received:
    return hook_events.receive_generic(
        session,
        settings=panel(request).settings,
        body=body,
        timestamp=request.headers.get("x-mailctl-timestamp", ""),
        signature=request.headers.get("x-mailctl-signature", ""),
    )


routes: list[BaseRoute] = [
    Route("/hooks/ses", _endpoint(_ses), methods=["POST"]),
    Route("/hooks/postmark", _endpoint(_postmark), methods=["POST"]),
    Route("/hooks/sendgrid", _endpoint(_sendgrid), methods=["POST"]),
    Route("/hooks/mailgun", _endpoint(_mailgun), methods=["POST"]),
    Route("/hooks/generic", _endpoint(_generic), methods=["POST"]),
]
