"""The blog editor's pages: posts list, create, edit (with an image), delete."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailctl.errors import Invalid
from mailctl.models import BlogPost, User
from mailctl.services import blog, blog_html
from mailctl.timeutil import parse_when, to_local
from mailctl.web.limits import limited
from mailctl.web.pages import db, flash, int_or_404, page_args, redirect, render
from mailctl.web.security import checked_form, require_user
from mailctl.web.state import panel

PER_PAGE = 25
# Text fields: the longest content in UTF-8, with room for the form's own bytes.
FIELD_MAX = blog.CONTENT_MAX * 4 + 4096
BODY_SLACK = FIELD_MAX + 64 * 1024


async def _editor(request: Request) -> User:
    user = await require_user(request)
    # Checked before the form is read: nobody else gets to upload a file, even briefly.
    blog.check_may_manage(actor=user)
    return user


async def _form(request: Request) -> FormData:
    """The checked form; the caller closes it (Starlette leaves uploaded temp files open)."""
    max_image = panel(request).settings.web.max_upload_bytes
    capped = limited(request, max_image + BODY_SLACK)
    try:
        return await checked_form(capped, max_part_size=FIELD_MAX)
    except BaseException:
        await capped.close()
        raise


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def _store_image(request: Request, form: FormData) -> str | None:
    upload = form.get("image")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    settings = panel(request).settings
    max_bytes = settings.web.max_upload_bytes
    if upload.size is not None and upload.size > max_bytes:
        raise Invalid(f"the image is too large ({upload.size} bytes, at most {max_bytes})")
    data = await upload.read(max_bytes + 1)
    return await run_in_threadpool(
        lambda: blog.store_image(data=data, uploads_dir=settings.uploads_dir, max_bytes=max_bytes)
    )


def _drop_image(request: Request, name: str | None) -> None:
    if name:
        Path(panel(request).settings.uploads_dir / name).unlink(missing_ok=True)


def _local_input(value: datetime | None, tz: str) -> str:
    return to_local(value, tz).strftime("%Y-%m-%dT%H:%M") if value else ""


def _form_page(
    request: Request,
    *,
    post: BlogPost | None,
    values: dict[str, str],
    error: str | None = None,
    status: int = 200,
    preview: str | None = None,
) -> Response:
    return render(
        request,
        "editor/post_form.html",
        status_code=status,
        post=post,
        values=values,
        error=error,
        preview=preview,
        max_upload=panel(request).settings.web.max_upload_bytes,
    )


def _values(form: FormData) -> dict[str, str]:
    return {n: _text(form, n) for n in ("title", "content", "published_at")}


async def post_list(request: Request) -> Response:
    user = await _editor(request)
    page, limit, offset = page_args(request, PER_PAGE)

    def work(session: Session) -> tuple[list[tuple[BlogPost, str]], int]:
        total = blog.count_posts(session=session, actor=user)
        posts = blog.list_posts(session=session, actor=user, limit=limit, offset=offset)
        return [(p, blog.post_state(p)) for p in posts], total

    rows, total = await db(request, work, readonly=True)
    return render(
        request,
        "editor/posts.html",
        rows=rows,
        page=page,
        has_next=offset + limit < total,
        total=total,
    )


async def _save(
    request: Request, post: BlogPost | None, write: Callable[[Session, dict[str, Any]], BlogPost]
) -> Response:
    """Shared by create and edit: read the form, store the image, write, tidy up on failure."""
    form = await _form(request)
    try:
        return await _write(request, post, form, write)
    finally:
        await form.close()


async def _write(
    request: Request,
    post: BlogPost | None,
    form: FormData,
    write: Callable[[Session, dict[str, Any]], BlogPost],
) -> Response:
    values = _values(form)
    if form.get("action") == "preview":
        # Nothing saved, no image stored: the form again with the post as the blog shows it.
        html = blog_html.preview_post(actor=await _editor(request), content=values["content"])
        return _form_page(request, post=post, values=values, preview=html)
    tz = panel(request).settings.scheduler.timezone
    image = None
    try:
        when = values["published_at"].strip()
        args: dict[str, Any] = {
            "title": values["title"],
            "content": values["content"],
            "published_at": parse_when(when, tz) if when else None,
            "remove_image": form.get("remove_image") == "1",
        }
        image = await _store_image(request, form)
        args["image"] = image
        saved = await db(request, lambda s: write(s, args))
    except Invalid as exc:
        _drop_image(request, image)
        return _form_page(request, post=post, values=values, error=str(exc), status=400)
    if post is not None and post.image and post.image != saved.image:
        _drop_image(request, post.image)  # replaced or removed: nothing links to it any more
    flash(request, f"Saved “{saved.title}”.")
    return redirect("/editor/posts")


async def new_post(request: Request) -> Response:
    user = await _editor(request)
    if request.method == "GET":
        return _form_page(
            request, post=None, values={"title": "", "content": "", "published_at": ""}
        )

    def write(session: Session, args: dict[str, Any]) -> BlogPost:
        return blog.add_post(
            session=session,
            actor=user,
            title=args["title"],
            content=args["content"],
            image=args["image"],
            published_at=args["published_at"],
        )

    return await _save(request, None, write)


async def edit_post(request: Request) -> Response:
    user = await _editor(request)
    post_id = int_or_404(request.path_params["post_id"])
    post = await db(
        request, lambda s: blog.get_post(session=s, actor=user, post_id=post_id), readonly=True
    )
    if request.method == "GET":
        tz = panel(request).settings.scheduler.timezone
        values = {
            "title": post.title,
            "content": post.content,
            "published_at": _local_input(post.published_at, tz),
        }
        return _form_page(request, post=post, values=values)

    def write(session: Session, args: dict[str, Any]) -> BlogPost:
        return blog.edit_post(
            session=session,
            actor=user,
            post_id=post_id,
            title=args["title"],
            content=args["content"],
            image=args["image"],
            remove_image=args["remove_image"],
            published_at=args["published_at"],
            unpublish=args["published_at"] is None,
        )

    return await _save(request, post, write)


async def delete_post(request: Request) -> Response:
    user = await _editor(request)
    post_id = int_or_404(request.path_params["post_id"])
    await checked_form(request)

    def work(session: Session) -> tuple[str, str | None]:
        post = blog.get_post(session=session, actor=user, post_id=post_id)
        title, image = post.title, post.image
        blog.delete_post(session=session, actor=user, post_id=post_id)
        return title, image

    title, image = await db(request, work)
    _drop_image(request, image)
    flash(request, f"Deleted “{title}”.")
    return redirect("/editor/posts")


routes: list[BaseRoute] = [
    Route("/editor/posts", post_list, name="editor_posts"),
    Route("/editor/posts/new", new_post, methods=["GET", "POST"], name="editor_new"),
    Route("/editor/posts/{post_id}", edit_post, methods=["GET", "POST"], name="editor_edit"),
    Route("/editor/posts/{post_id}/delete", delete_post, methods=["POST"], name="editor_delete"),
]
