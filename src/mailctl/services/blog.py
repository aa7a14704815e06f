"""Blog posts that promote the service: editors and admins write, everyone reads."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import ColumnElement, func, update
from sqlmodel import Session, col, select

from mailctl.db import utcnow
from mailctl.errors import Invalid, NotFound
from mailctl.models import BlogPost, User
from mailctl.services.access import EDITOR_ROLES, require_role
from mailctl.services.validation import clean_text

TITLE_MAX = 200
CONTENT_MAX = 100_000
# Recognised by their first bytes, never by the name or the Content-Type a browser sends.
IMAGE_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": ".png",
    b"\xff\xd8\xff": ".jpg",
    b"GIF87a": ".gif",
    b"GIF89a": ".gif",
}


def image_extension(data: bytes) -> str:
    for magic, ext in IMAGE_SIGNATURES.items():
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    raise Invalid("the image must be a PNG, JPEG, GIF or WebP file")


def store_image(*, data: bytes, uploads_dir: Path, max_bytes: int) -> str:
    """Check an upload by content and size; save it under a generated name."""
    if not data:
        raise Invalid("the image is empty")
    if len(data) > max_bytes:
        raise Invalid(f"the image is too large ({len(data)} bytes, at most {max_bytes})")
    name = secrets.token_hex(16) + image_extension(data)
    uploads_dir.mkdir(parents=True, exist_ok=True)
    (uploads_dir / name).write_bytes(data)
    return name


def _clean(title: str, content: str) -> tuple[str, str]:
    return (
        clean_text(title, field="title", max_len=TITLE_MAX, required=True, single_line=True),
        clean_text(content, field="content", max_len=CONTENT_MAX, required=True),
    )


def add_post(
    *,
    session: Session,
    actor: User,
    title: str,
    content: str,
    image: str | None = None,
    published_at: datetime | None = None,
) -> BlogPost:
    require_role(actor, EDITOR_ROLES, "write blog posts")
    title, content = _clean(title, content)
    post = BlogPost(
        author_id=actor.id, title=title, content=content, image=image, published_at=published_at
    )
    session.add(post)
    session.flush()
    return post


def check_may_manage(*, actor: User) -> None:
    """Forbidden unless the actor may manage blog posts (checked before an upload is read)."""
    require_role(actor, EDITOR_ROLES, "manage blog posts")


def list_posts(
    *, session: Session, actor: User, limit: int | None = None, offset: int = 0
) -> Sequence[BlogPost]:
    """Every post, drafts included, newest first: the editor's view."""
    check_may_manage(actor=actor)
    stmt = select(BlogPost).order_by(col(BlogPost.id).desc())
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    return session.exec(stmt).all()


def count_posts(*, session: Session, actor: User) -> int:
    """How many posts `list_posts` shows, drafts included."""
    check_may_manage(actor=actor)
    return session.exec(select(func.count()).select_from(BlogPost)).one()


def post_state(post: BlogPost, now: datetime | None = None) -> str:
    """draft (no publication time), scheduled (a time to come) or published."""
    if post.published_at is None:
        return "draft"
    return "scheduled" if post.published_at > (now or utcnow()) else "published"


def get_post(*, session: Session, actor: User, post_id: int) -> BlogPost:
    check_may_manage(actor=actor)
    post = session.get(BlogPost, post_id)
    if post is None:
        raise NotFound(f"blog post {post_id} not found")
    return post


def edit_post(
    *,
    session: Session,
    actor: User,
    post_id: int,
    title: str | None = None,
    content: str | None = None,
    image: str | None = None,
    remove_image: bool = False,
    published_at: datetime | None = None,
    unpublish: bool = False,
) -> BlogPost:
    post = get_post(session=session, actor=actor, post_id=post_id)
    post.title, post.content = _clean(
        title if title is not None else post.title,
        content if content is not None else post.content,
    )
    if image is not None:
        post.image = image
    elif remove_image:
        post.image = None
    if published_at is not None:
        post.published_at = published_at
    elif unpublish:
        post.published_at = None
    post.updated_at = utcnow()
    session.add(post)
    return post


def publish_post(
    *, session: Session, actor: User, post_id: int, at: datetime | None = None
) -> BlogPost:
    post = get_post(session=session, actor=actor, post_id=post_id)
    post.published_at = at or utcnow()
    post.updated_at = utcnow()
    session.add(post)
    return post


def delete_post(*, session: Session, actor: User, post_id: int) -> None:
    session.delete(get_post(session=session, actor=actor, post_id=post_id))


def _published(now: datetime) -> ColumnElement[bool]:
    return col(BlogPost.published_at).is_not(None) & (col(BlogPost.published_at) <= now)


def published_posts(
    *, session: Session, limit: int | None = None, offset: int = 0, now: datetime | None = None
) -> Sequence[BlogPost]:
    stmt = (
        select(BlogPost)
        .where(_published(now or utcnow()))
        .order_by(col(BlogPost.published_at).desc(), col(BlogPost.id).desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    return session.exec(stmt).all()


def random_published(*, session: Session, count: int = 3) -> Sequence[BlogPost]:
    return session.exec(
        select(BlogPost).where(_published(utcnow())).order_by(func.random()).limit(count)
    ).all()


def published_post(*, session: Session, post_id: int) -> BlogPost:
    post = session.get(BlogPost, post_id)
    if post is None or post.published_at is None or post.published_at > utcnow():
        raise NotFound(f"blog post {post_id} not found")
    return post


def count_view(*, session: Session, post_id: int) -> int:
    """One more view, counted in the database so concurrent views are never lost."""
    published_post(session=session, post_id=post_id)
    session.execute(
        update(BlogPost).where(col(BlogPost.id) == post_id).values(views=col(BlogPost.views) + 1)
    )
    return session.exec(select(BlogPost.views).where(BlogPost.id == post_id)).one()
