"""Messages: a subject and a body (Markdown, HTML or text), templates over the client."""

from __future__ import annotations

from collections.abc import Sequence
from types import EllipsisType

from sqlmodel import Session, col, select

from mailctl.config import Settings
from mailctl.db import utcnow
from mailctl.errors import Conflict, Invalid
from mailctl.models import BodyFormat, Client, Layout, Mailing, Message, User
from mailctl.sending.budget import DEFAULT_LIMITS, RenderLimits
from mailctl.sending.render import MessageContent, MessageRenderer, Rendered, validate_content
from mailctl.sending.templates import Attrs, RenderClient
from mailctl.services.access import CONTENT_ROLES, get_visible, owner_scope, require_role
from mailctl.services.clients import get_client, list_clients
from mailctl.services.validation import clean_text

SUBJECT_MAX = 255
PREVIEW_UNSUBSCRIBE = "[this client's own unsubscribe link]"
BODY_MAX = 200_000
FORMATS = tuple(f.value for f in BodyFormat)


def render_limits(settings: Settings) -> RenderLimits:
    """The [render] budgets, which adapters hand to the functions here."""
    return RenderLimits.from_settings(settings)


def clean_format(value: str) -> str:
    value = (value or "").strip().lower()
    if value not in FORMATS:
        raise Invalid(f"format must be one of {', '.join(FORMATS)}, not {value!r}")
    return value


def message_layout(session: Session, message: Message) -> Layout | None:
    """The layout a message goes out in (None: the default one)."""
    if message.layout_id is None or message.format == BodyFormat.text:
        return None
    return session.get(Layout, message.layout_id)


def _owned_layout(session: Session, actor: User, owner_id: int, layout_id: int) -> Layout:
    """One of the message owner's layouts (an admin writing for someone picks among theirs)."""
    layout = get_visible(session, Layout, layout_id, actor)
    if layout.owner_id != owner_id:
        raise NotFoundLayout(layout_id)
    return layout


class NotFoundLayout(Invalid):
    def __init__(self, layout_id: int) -> None:
        super().__init__(f"layout {layout_id} not found among the message owner's layouts")


def _clean(
    subject: str,
    body: str,
    fmt: str,
    layout: Layout | None,
    limits: RenderLimits,
) -> tuple[str, str]:
    subject = clean_text(
        subject, field="subject", max_len=SUBJECT_MAX, required=True, single_line=True
    )
    # The body as written: indented lines and a final newline are part of it. Only line
    # endings are made one kind (a browser's form sends CRLF, a file may have either).
    body = (body or "").replace("\r\n", "\n").replace("\r", "\n")
    body = clean_text(body, field="body", max_len=BODY_MAX, required=True, strip=False)
    # Every part (subject, text, HTML in its layout) rendered for sample clients within the
    # render budget: a template that would run away or grow without bound is refused here,
    # in one line, before it is ever sent.
    content = MessageContent(
        subject=subject, body=body, format=fmt, layout=layout.html if layout else None
    )
    validate_content(content, limits=limits)
    return subject, body


def check_may_write(*, actor: User) -> None:
    """Forbidden unless the actor may write messages (the form is not even shown otherwise)."""
    require_role(actor, CONTENT_ROLES, "write messages")


def add_message(
    *,
    session: Session,
    actor: User,
    subject: str,
    body: str,
    format: str = BodyFormat.markdown.value,  # noqa: A002 (the field's name)
    layout_id: int | None = None,
    limits: RenderLimits = DEFAULT_LIMITS,
) -> Message:
    check_may_write(actor=actor)
    assert actor.id is not None
    fmt = clean_format(format)
    layout = None
    if layout_id is not None:
        if fmt == BodyFormat.text:
            raise Invalid("a text message has no layout; choose markdown or html")
        layout = _owned_layout(session, actor, actor.id, layout_id)
    subject, body = _clean(subject, body, fmt, layout, limits)
    message = Message(
        owner_id=actor.id, subject=subject, body=body, format=fmt, layout_id=layout_id
    )
    session.add(message)
    session.flush()
    return message


def list_messages(
    *, session: Session, actor: User, owner_id: int | None = None
) -> Sequence[Message]:
    """The messages the actor may see, optionally only one owner's (an admin building a
    mailing for that owner)."""
    require_role(actor, CONTENT_ROLES, "list messages")
    stmt = owner_scope(select(Message), Message, actor).order_by(col(Message.id))
    if owner_id is not None:
        stmt = stmt.where(Message.owner_id == owner_id)
    return session.exec(stmt).all()


def get_message(*, session: Session, actor: User, message_id: int) -> Message:
    require_role(actor, CONTENT_ROLES, "see messages")
    return get_visible(session, Message, message_id, actor)


def edit_message(
    *,
    session: Session,
    actor: User,
    message_id: int,
    subject: str | None = None,
    body: str | None = None,
    format: str | None = None,  # noqa: A002 (the field's name)
    layout_id: int | None | EllipsisType = ...,  # ...: keep; None: the default layout
    limits: RenderLimits = DEFAULT_LIMITS,
) -> Message:
    message = get_message(session=session, actor=actor, message_id=message_id)
    fmt = clean_format(format) if format is not None else message.format
    if layout_id is not ...:
        if layout_id is not None:
            if fmt == BodyFormat.text:
                raise Invalid("a text message has no layout; choose markdown or html")
            _owned_layout(session, actor, message.owner_id, layout_id)
        message.layout_id = layout_id
    message.subject, message.body = _clean(
        subject if subject is not None else message.subject,
        body if body is not None else message.body,
        fmt,
        message_layout(session, message.model_copy(update={"format": fmt})),
        limits,
    )
    message.format = fmt
    message.updated_at = utcnow()
    session.add(message)
    return message


def delete_message(*, session: Session, actor: User, message_id: int) -> None:
    message = get_message(session=session, actor=actor, message_id=message_id)
    used = session.exec(select(Mailing.id).where(Mailing.message_id == message.id)).all()
    if used:
        ids = ", ".join(str(i) for i in used)
        raise Conflict(
            f"message {message_id} is used by mailing {ids}; delete or change those first"
        )
    session.delete(message)


def preview_clients(
    *, session: Session, actor: User, message_id: int, limit: int | None = None
) -> Sequence[Client]:
    """The clients a message can be previewed for: its owner's (an admin sees everyone's
    clients, but only the owner's fit the message)."""
    message = get_message(session=session, actor=actor, message_id=message_id)
    return list_clients(session=session, actor=actor, owner_id=message.owner_id, limit=limit)


def preview_message(
    *,
    session: Session,
    actor: User,
    message_id: int,
    client_id: int,
    from_address: str,
    from_name: str,
    limits: RenderLimits = DEFAULT_LIMITS,
    postal_address: str = "",
    links: tuple[str, str] = ("", ""),
) -> Rendered:
    """The message as this client would get it; RenderFailed (Invalid) says why not.
    `links` are the (unsubscribe, view in browser) URLs to show in it; the unsubscribe link
    is never the real one: following it from a preview would unsubscribe the client."""
    message = get_message(session=session, actor=actor, message_id=message_id)
    client = get_client(session=session, actor=actor, client_id=client_id)
    if client.owner_id != message.owner_id:
        raise Conflict(f"client {client_id} and message {message_id} belong to different users")
    return render_message(
        session,
        message,
        RenderClient(email=client.email, full_name=client.full_name, attrs=Attrs(client.attrs)),
        from_address=from_address,
        from_name=from_name,
        limits=limits,
        postal_address=postal_address,
        links=(PREVIEW_UNSUBSCRIBE, links[1]),
    )


def recipient_links(settings: Settings, message_id: int, client_id: int) -> tuple[str, str]:
    """The (unsubscribe, view in browser) links the sender puts in this client's copy."""
    from mailctl.sending.links import Links

    links = Links.from_settings(settings)
    return links.unsubscribe_url(client_id), links.web_url(message_id, client_id)


def render_message(
    session: Session,
    message: Message,
    client: RenderClient,
    *,
    from_address: str,
    from_name: str,
    limits: RenderLimits,
    postal_address: str = "",
    links: tuple[str, str] = ("", ""),
    to_address: str | None = None,
) -> Rendered:
    """One message for one recipient, as the sender builds it (access already checked)."""
    renderer = MessageRenderer(
        MessageContent.of(message, message_layout(session, message)),
        from_address=from_address,
        from_name=from_name,
        limits=limits,
        postal_address=postal_address,
        unsubscribe=links[0].startswith(("https://", "http://")),
    )
    return renderer.render(
        client, unsubscribe_url=links[0], web_url=links[1], to_address=to_address
    )
