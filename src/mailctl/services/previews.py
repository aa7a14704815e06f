"""A message as a recipient sees it, for the people allowed to look: its owner (as any of
their clients or a sample one), a manager or admin overseeing a mailing, and the recipient
themselves through the signed "view in browser" link. The HTML this returns is the user's:
adapters show it only in a sandboxed frame or under a sandboxing CSP, never inline."""

from __future__ import annotations

from sqlmodel import Session

from mailctl.config import Settings
from mailctl.errors import Conflict, NotFound
from mailctl.models import Client, Message, User
from mailctl.sending.links import Links, web_url_ids
from mailctl.sending.render import Rendered
from mailctl.sending.templates import SAMPLE, Attrs, RenderClient
from mailctl.services.access import CONTENT_ROLES, require_role
from mailctl.services.clients import get_client
from mailctl.services.mailings import get_mailing
from mailctl.services.messages import (
    PREVIEW_UNSUBSCRIBE,
    get_message,
    render_limits,
    render_message,
)


def _render(
    session: Session,
    settings: Settings,
    message: Message,
    client: RenderClient,
    links: tuple[str, str],
) -> Rendered:
    delivery = settings.delivery
    return render_message(
        session,
        message,
        client,
        from_address=delivery.from_address,
        from_name=delivery.from_name,
        limits=render_limits(settings),
        postal_address=delivery.postal_address,
        links=links,
    )


def preview_for_client(
    *,
    session: Session,
    actor: User,
    settings: Settings,
    message_id: int,
    client_id: int | None,
) -> Rendered:
    """The message as one of its owner's clients gets it (links included), or as a sample
    client when `client_id` is None; RenderFailed (Invalid) says why it cannot be built."""
    message = get_message(session=session, actor=actor, message_id=message_id)
    if client_id is None:
        return _render(session, settings, message, SAMPLE, ("#unsubscribe", "#view"))
    client = get_client(session=session, actor=actor, client_id=client_id)
    if client.owner_id != message.owner_id:
        raise Conflict(f"client {client_id} and message {message_id} belong to different users")
    links = Links.from_settings(settings)
    return _render(
        session,
        settings,
        message,
        RenderClient(email=client.email, full_name=client.full_name, attrs=Attrs(client.attrs)),
        # Not the client's real unsubscribe link: following it from a preview would
        # unsubscribe them (the view link only shows the message).
        (PREVIEW_UNSUBSCRIBE, links.web_url(message_id, client_id)),
    )


def preview_mailing_message(
    *, session: Session, actor: User, settings: Settings, mailing_id: int
) -> tuple[Message, Rendered]:
    """A mailing's message for a sample client: what a manager overseeing it may see."""
    mailing = get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    message = session.get(Message, mailing.message_id)
    if message is None:
        raise NotFound(f"mailing {mailing_id} has no message")
    return message, _render(session, settings, message, SAMPLE, ("#unsubscribe", "#view"))


def view_in_browser(*, session: Session, settings: Settings, token: str) -> Rendered:
    """The message a signed view link was made for, as that recipient gets it today.
    NotFound for a forged link and for a message or client deleted since."""
    links = Links.from_settings(settings)
    try:
        message_id, client_id = web_url_ids(links.secret, token)
    except Exception:
        raise NotFound("this link is not valid") from None
    message = session.get(Message, message_id)
    client = session.get(Client, client_id)
    if message is None or client is None or client.owner_id != message.owner_id:
        raise NotFound("this message is no longer available")
    return _render(
        session,
        settings,
        message,
        RenderClient(email=client.email, full_name=client.full_name, attrs=Attrs(client.attrs)),
        (links.unsubscribe_url(client_id), ""),
    )


SAMPLE_NEWSLETTER = """# Our news, {{ client.first_name }}

A paragraph of the newsletter, with **bold text**, *emphasis* and [a link](https://example.com/).

## A second heading

- a list item
- another one

> A quotation, set apart.
"""


def preview_layout(
    *, session: Session, actor: User, settings: Settings, layout_id: int | None
) -> Rendered:
    """A sample Markdown newsletter in one of the actor's layouts (None: the built-in one)."""
    from mailctl.sending.compose import default_layout
    from mailctl.sending.render import MessageContent, MessageRenderer
    from mailctl.services.layouts import get_layout

    if layout_id is None:
        require_role(actor, CONTENT_ROLES, "see layouts")
        html = default_layout()
    else:
        html = get_layout(session=session, actor=actor, layout_id=layout_id).html
    delivery = settings.delivery
    renderer = MessageRenderer(
        MessageContent(subject="Sample", body=SAMPLE_NEWSLETTER, format="markdown", layout=html),
        from_address=delivery.from_address,
        from_name=delivery.from_name,
        limits=render_limits(settings),
        postal_address=delivery.postal_address,
    )
    return renderer.render(SAMPLE, unsubscribe_url="#unsubscribe", web_url="#view")
