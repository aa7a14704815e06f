"""`mailctl blog ...`"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from mailctl.cli.context import AppContext, app_context
from mailctl.cli.messages import text_or_file
from mailctl.cli.output import JsonOpt, emit_one, emit_rows, note, records
from mailctl.errors import Invalid
from mailctl.models import User
from mailctl.services import blog as svc
from mailctl.timeutil import fmt, parse_when

app = typer.Typer(no_args_is_help=True, add_completion=False)

FIELDS = (
    "id",
    "title",
    "content",
    "image",
    "views",
    "published_at",
    "author_id",
    "created_at",
    "updated_at",
)
COLUMNS = ("id", "title", "published_at", "views", "image")

PostId = Annotated[int, typer.Argument(help="Blog post id.")]
TitleOpt = Annotated[str | None, typer.Option("--title", help="Title.")]
ContentOpt = Annotated[str | None, typer.Option("--content", help="Content text.")]
ContentFileOpt = Annotated[
    Path | None, typer.Option("--content-file", help="Read the content from this UTF-8 file.")
]
ImageOpt = Annotated[
    Path | None, typer.Option("--image", help="A PNG, JPEG, GIF or WebP image to show.")
]


def _read_image(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise Invalid(f"cannot read {path}: {exc.strerror}") from None


def _attach(
    app_ctx: AppContext, session: Session, actor: User, post_id: int, data: bytes | None
) -> None:
    """Store the image once the service has accepted the post, then point the post at it."""
    if data is None:
        return
    settings = app_ctx.settings
    name = svc.store_image(
        data=data,
        uploads_dir=settings.uploads_dir,
        max_bytes=settings.web.max_upload_bytes,
    )
    svc.edit_post(session=session, actor=actor, post_id=post_id, image=name)


@app.command("add")
def add(
    ctx: typer.Context,
    title: Annotated[str, typer.Option("--title", help="Title.")],
    content: ContentOpt = None,
    content_file: ContentFileOpt = None,
    image: ImageOpt = None,
    publish_at: Annotated[
        str | None, typer.Option("--publish-at", help="Publish at this time (default: a draft).")
    ] = None,
) -> None:
    """Write a blog post (editors and admins); it stays a draft until its publication time.

    Example: mailctl blog add --title "Spring offers" --content-file post.md --publish-at now
    """
    app_ctx = app_context(ctx)
    text = text_or_file(content, content_file, name="content", required=True) or ""
    when = parse_when(publish_at, app_ctx.tz) if publish_at is not None else None
    data = _read_image(image)
    with app_ctx.session() as session:
        actor = app_ctx.actor(session)
        post = svc.add_post(
            session=session, actor=actor, title=title, content=text, published_at=when
        )
        _attach(app_ctx, session, actor, post.id or 0, data)
    note(f"added blog post {post.id}")
    typer.echo(post.id)


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List every blog post, drafts included, newest first.

    Example: mailctl blog list --json
    """
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        posts = svc.list_posts(session=session, actor=app_ctx.actor(session))
    emit_rows(records(posts, FIELDS), columns=COLUMNS, as_json=as_json, tz=app_ctx.tz, title="Blog")


@app.command("show")
def show(ctx: typer.Context, post_id: PostId, as_json: JsonOpt = False) -> None:
    """Show one blog post with its content.

    Example: mailctl blog show 1
    """
    app_ctx = app_context(ctx)
    with app_ctx.session(readonly=True) as session:
        post = svc.get_post(session=session, actor=app_ctx.actor(session), post_id=post_id)
    emit_one(records([post], FIELDS)[0], as_json=as_json, tz=app_ctx.tz)


@app.command("edit")
def edit(
    ctx: typer.Context,
    post_id: PostId,
    title: TitleOpt = None,
    content: ContentOpt = None,
    content_file: ContentFileOpt = None,
    image: ImageOpt = None,
    remove_image: Annotated[bool, typer.Option("--remove-image", help="Show no image.")] = False,
    publish_at: Annotated[
        str | None, typer.Option("--publish-at", help="New publication time.")
    ] = None,
    unpublish: Annotated[bool, typer.Option("--unpublish", help="Make it a draft again.")] = False,
) -> None:
    """Change a blog post's title, content, image or publication time.

    Example: mailctl blog edit 1 --title "Summer offers" --remove-image
    """
    app_ctx = app_context(ctx)
    if image is not None and remove_image:
        raise typer.BadParameter("give one, not both", param_hint="'--image' / '--remove-image'")
    if publish_at is not None and unpublish:
        raise typer.BadParameter("give one, not both", param_hint="'--publish-at' / '--unpublish'")
    text = text_or_file(content, content_file, name="content", required=False)
    when = parse_when(publish_at, app_ctx.tz) if publish_at is not None else None
    data = _read_image(image)
    with app_ctx.session() as session:
        actor = app_ctx.actor(session)
        svc.edit_post(
            session=session,
            actor=actor,
            post_id=post_id,
            title=title,
            content=text,
            remove_image=remove_image,
            published_at=when,
            unpublish=unpublish,
        )
        _attach(app_ctx, session, actor, post_id, data)
    note(f"updated blog post {post_id}")


@app.command("rm")
def rm(ctx: typer.Context, post_id: PostId) -> None:
    """Delete a blog post.

    Example: mailctl blog rm 1
    """
    app_ctx = app_context(ctx)
    with app_ctx.session() as session:
        svc.delete_post(session=session, actor=app_ctx.actor(session), post_id=post_id)
    note(f"deleted blog post {post_id}")


@app.command("publish")
def publish(
    ctx: typer.Context,
    post_id: PostId,
    at: Annotated[str | None, typer.Option("--at", help="Publication time (default: now).")] = None,
) -> None:
    """Publish a blog post now or at a given time.

    Example: mailctl blog publish 1 --at "2030-05-01 08:00"
    """
    app_ctx = app_context(ctx)
    when = parse_when(at, app_ctx.tz) if at is not None else None
    with app_ctx.session() as session:
        post = svc.publish_post(
            session=session, actor=app_ctx.actor(session), post_id=post_id, at=when
        )
    note(f"blog post {post_id} is published from {fmt(post.published_at, app_ctx.tz)}")
