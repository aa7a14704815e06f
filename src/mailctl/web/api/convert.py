"""Rows as the API's JSON, and times as the CLI takes them."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from mailctl.errors import Invalid
from mailctl.models import BlogPost, Client, Mailing, Message, User
from mailctl.services import blog
from mailctl.services.audiences import mailing_tag_names
from mailctl.services.mailings import mailing_client_ids
from mailctl.timeutil import parse_when
from mailctl.web.api import schemas as s
from mailctl.web.api.framework import Call, FieldInvalid


def when(call: Call, text: str, field: str) -> datetime:
    """A time as the CLI reads it (ISO 8601, `now`, `+2h`), naming the field when it cannot."""
    try:
        return parse_when(text, call.state.settings.scheduler.timezone)
    except Invalid as exc:
        raise FieldInvalid(field, f"{field}: {exc}") from None
    except (OverflowError, ValueError):
        raise FieldInvalid(field, f"{field}: the time {text!r} is out of range") from None


def client_out(client: Client, tags: list[str]) -> s.ClientOut:
    return s.ClientOut(
        id=client.id or 0,
        owner_id=client.owner_id,
        email=client.email,
        full_name=client.full_name,
        comment=client.comment,
        tags=tags,
        attrs=dict(client.attrs or {}),
        unsubscribed_at=client.unsubscribed_at,
        created_at=client.created_at,
    )


def message_out(m: Message) -> s.MessageOut:
    return s.MessageOut(
        id=m.id or 0,
        owner_id=m.owner_id,
        subject=m.subject,
        body=m.body,
        format=m.format,
        layout_id=m.layout_id,
        created_at=m.created_at,
        updated_at=m.updated_at,
    )


def mailing_out(session: Session, m: Mailing) -> s.MailingOut:
    return s.MailingOut(
        id=m.id or 0,
        owner_id=m.owner_id,
        message_id=m.message_id,
        audience=m.audience,
        client_ids=mailing_client_ids(session=session, mailing=m)
        if m.audience == "clients"
        else [],
        tags=mailing_tag_names(session, m.id or 0) if m.audience == "tags" else [],
        every=m.every,
        start=m.start_at,
        end=m.end_at,
        status=m.status if m.is_enabled else "disabled",
        is_enabled=m.is_enabled,
        next_run_at=m.next_run_at,
        last_run_at=m.last_run_at,
        last_error=m.last_error,
        quota_server=m.quota_server,
        quota_until=m.quota_until,
    )


def post_out(p: BlogPost) -> s.PostOut:
    return s.PostOut(
        id=p.id or 0,
        author_id=p.author_id,
        title=p.title,
        content=p.content,
        state=blog.post_state(p),
        published_at=p.published_at,
        views=p.views,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


def user_out(u: User) -> s.UserOut:
    return s.UserOut(
        id=u.id or 0,
        email=u.email,
        full_name=u.full_name,
        role=u.role,
        is_active=u.is_active,
        is_verified=u.is_verified,
        date_joined=u.date_joined,
        last_login=u.last_login,
    )
