"""Email layouts: a user's own HTML around their messages, beside the one that ships."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from mailctl.db import utcnow
from mailctl.errors import Conflict
from mailctl.models import Layout, Message, User
from mailctl.sending.budget import DEFAULT_LIMITS, RenderLimits
from mailctl.sending.compose import default_layout
from mailctl.sending.render import validate_layout
from mailctl.services.access import CONTENT_ROLES, get_visible, owner_scope, require_role
from mailctl.services.validation import clean_text

NAME_MAX = 100
HTML_MAX = 100_000

__all__ = [
    "add_layout",
    "default_layout",
    "delete_layout",
    "edit_layout",
    "get_layout",
    "list_layouts",
]


def _clean(name: str, html: str, limits: RenderLimits) -> tuple[str, str]:
    name = clean_text(name, field="name", max_len=NAME_MAX, required=True, single_line=True)
    html = clean_text(html, field="layout", max_len=HTML_MAX, required=True)
    validate_layout(html, limits=limits)
    return name, html


def _name_free(session: Session, owner_id: int, name: str, layout_id: int | None) -> None:
    stmt = select(Layout.id).where(Layout.owner_id == owner_id, Layout.name == name)
    taken = session.exec(stmt).first()
    if taken is not None and taken != layout_id:
        raise Conflict(f"a layout named {name!r} exists already (layout {taken})")


def add_layout(
    *,
    session: Session,
    actor: User,
    name: str,
    html: str,
    limits: RenderLimits = DEFAULT_LIMITS,
) -> Layout:
    require_role(actor, CONTENT_ROLES, "write layouts")
    assert actor.id is not None
    name, html = _clean(name, html, limits)
    _name_free(session, actor.id, name, None)
    layout = Layout(owner_id=actor.id, name=name, html=html)
    session.add(layout)
    session.flush()
    return layout


def list_layouts(*, session: Session, actor: User, owner_id: int | None = None) -> Sequence[Layout]:
    """The layouts the actor may see, optionally only one owner's (for that owner's message)."""
    require_role(actor, CONTENT_ROLES, "list layouts")
    stmt = owner_scope(select(Layout), Layout, actor).order_by(col(Layout.id))
    if owner_id is not None:
        stmt = stmt.where(Layout.owner_id == owner_id)
    return session.exec(stmt).all()


def get_layout(*, session: Session, actor: User, layout_id: int) -> Layout:
    require_role(actor, CONTENT_ROLES, "see layouts")
    return get_visible(session, Layout, layout_id, actor)


def edit_layout(
    *,
    session: Session,
    actor: User,
    layout_id: int,
    name: str | None = None,
    html: str | None = None,
    limits: RenderLimits = DEFAULT_LIMITS,
) -> Layout:
    layout = get_layout(session=session, actor=actor, layout_id=layout_id)
    new_name, new_html = _clean(
        name if name is not None else layout.name,
        html if html is not None else layout.html,
        limits,
    )
    _name_free(session, layout.owner_id, new_name, layout.id)
    layout.name, layout.html, layout.updated_at = new_name, new_html, utcnow()
    session.add(layout)
    # The sender keeps one renderer per message version: a message in this layout is a new
    # version from now on, so a run in progress picks the new layout up with its next batch.
    for message in session.exec(select(Message).where(Message.layout_id == layout.id)):
        message.updated_at = layout.updated_at
        session.add(message)
    return layout


def delete_layout(*, session: Session, actor: User, layout_id: int) -> None:
    layout = get_layout(session=session, actor=actor, layout_id=layout_id)
    used = session.exec(select(Message.id).where(Message.layout_id == layout.id)).all()
    if used:
        ids = ", ".join(str(i) for i in used)
        raise Conflict(f"layout {layout_id} is used by message {ids}; change those first")
    session.delete(layout)
