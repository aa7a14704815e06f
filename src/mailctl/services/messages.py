"""Messages: a subject and a body, both templates over the client."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from mailctl.config import Settings
from mailctl.db import utcnow
from mailctl.errors import Conflict
from mailctl.models import Client, Mailing, Message, User
from mailctl.sending.budget import DEFAULT_LIMITS, RenderLimits
from mailctl.sending.render import MessageContent, MessageRenderer, Rendered
from mailctl.sending.templates import Attrs, RenderClient, validate_message
from mailctl.services.access import CONTENT_ROLES, get_visible, owner_scope, require_role
from mailctl.services.clients import get_client, list_clients
from mailctl.services.validation import clean_text

SUBJECT_MAX = 255
PREVIEW_UNSUBSCRIBE = "[this client's own unsubscribe link]"
BODY_MAX = 200_000


def render_limits(settings: Settings) -> RenderLimits:
    """The [render] budgets, which adapters hand to the functions here."""
    return RenderLimits.from_settings(settings)


def _clean(subject: str, body: str, limits: RenderLimits) -> tuple[str, str]:
    subject = clean_text(
        subject, field="subject", max_len=SUBJECT_MAX, required=True, single_line=True
    )
    # The body as written: indented lines and a final newline are part of it. Only line
    # endings are made one kind (a browser's form sends CRLF, a file may have either).
    body = (body or "").replace("\r\n", "\n").replace("\r", "\n")
    body = clean_text(body, field="body", max_len=BODY_MAX, required=True, strip=False)
    # Rendered for sample clients within the render budget: a template that would run away
    # or grow without bound is refused here, in one line, before it is ever sent.
    validate_message(subject, body, limits=limits)
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
    limits: RenderLimits = DEFAULT_LIMITS,
) -> Message:
    check_may_write(actor=actor)
    assert actor.id is not None
    subject, body = _clean(subject, body, limits)
    message = Message(owner_id=actor.id, subject=subject, body=body)
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
    limits: RenderLimits = DEFAULT_LIMITS,
) -> Message:
    message = get_message(session=session, actor=actor, message_id=message_id)
    message.subject, message.body = _clean(
        subject if subject is not None else message.subject,
        body if body is not None else message.body,
        limits,
    )
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
) -> Rendered:
    """The message as this client would get it; RenderFailed (Invalid) says why not."""
    message = get_message(session=session, actor=actor, message_id=message_id)
    client = get_client(session=session, actor=actor, client_id=client_id)
    if client.owner_id != message.owner_id:
        raise Conflict(f"client {client_id} and message {message_id} belong to different users")
    renderer = MessageRenderer(
        MessageContent.of(message),
        from_address=from_address,
        from_name=from_name,
        limits=limits,
    )
    # Not the real link: following it from a preview would unsubscribe the client.
    return renderer.render(
        RenderClient(email=client.email, full_name=client.full_name, attrs=Attrs(client.attrs)),
        unsubscribe_url=PREVIEW_UNSUBSCRIBE,
    )
