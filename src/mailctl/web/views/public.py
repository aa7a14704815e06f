"""Public pages: home with figures, the blog, uploaded images, unsubscribe links."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from mailctl.db import session_scope, unnoticed
from mailctl.errors import NotFound
from mailctl.models import BlogPost, Client
from mailctl.services import blog, blog_html, clients, mailings
from mailctl.services.preferences import preferences
from mailctl.web.pages import db, int_or_404, page_args, render
from mailctl.web.security import current_user
from mailctl.web.state import panel

PER_PAGE = 10
EXCERPT = 280
# Names come from blog.store_image: 32 hex digits and the extension of the detected type.
UPLOAD_NAME = re.compile(r"^[0-9a-f]{32}\.(png|jpg|gif|webp)$")
IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


@dataclass(frozen=True)
class PostCard:
    """What the cached pages keep of a post: never its view count, which changes every hit."""

    id: int
    title: str
    content: str
    image: str | None
    published_at: datetime | None
    # The Markdown rendered and sanitised once, when the cache is filled (blog_html.py).
    html: str = ""
    text: str = ""

    @property
    def excerpt(self) -> str:
        text = " ".join(self.text.split())
        return text if len(text) <= EXCERPT else text[:EXCERPT].rsplit(" ", 1)[0] + "…"


def card(post: BlogPost) -> PostCard:
    html = blog_html.post_html(post.content)
    return PostCard(
        id=post.id or 0,
        title=post.title,
        content=post.content,
        image=post.image,
        published_at=post.published_at,
        html=html,
        text=blog_html.html_text(html),
    )


async def cached(request: Request, key: str, tag: str, compute: Any) -> Any:
    """A value from the shared cache, computed in its own read-only transaction on a miss."""
    state = panel(request)

    def fill() -> Any:
        with session_scope(state.engine, readonly=True) as session:
            return compute(session)

    return await run_in_threadpool(state.cache.get_or_set, key, tag, fill)


def _figures(session: Session) -> dict[str, int]:
    stats = mailings.stats(session=session, actor=None)
    return {
        "total_mailings": stats.total_mailings,
        "active_mailings": stats.active_mailings,
        "unique_clients": stats.unique_clients,
    }


def _random_cards(session: Session) -> list[PostCard]:
    return [card(p) for p in blog.random_published(session=session, count=3)]


async def home(request: Request) -> Response:
    user = await current_user(request)
    # Most visitors are anonymous and see the same page: keep it whole. (Not with a flash
    # message, which is one visitor's own, nor for a logged-in user, whose menu differs.)
    shared = user is None and not request.session.get("flashes")
    page_cache = panel(request).cache
    if shared and (body := page_cache.get("home:page")) is not None:
        return HTMLResponse(body)
    figures = await cached(request, "home:figures", "stats", _figures)
    posts = await cached(request, "home:posts", "blog", _random_cards)
    response = render(request, "public/home.html", figures=figures, posts=posts)
    if shared:
        page_cache.put("home:page", "home", bytes(response.body))
    return response


async def blog_list(request: Request) -> Response:
    await current_user(request)
    page, limit, offset = page_args(request, PER_PAGE)

    def compute(session: Session) -> tuple[list[PostCard], bool]:
        # One more than a page tells whether a next page exists, without a COUNT.
        rows = blog.published_posts(session=session, limit=limit + 1, offset=offset)
        return [card(p) for p in rows[:limit]], len(rows) > limit

    posts, has_next = await cached(request, f"blog:list:{page}", "blog", compute)
    if page > 1 and not posts:
        raise NotFound("there is no such page of the blog")
    return render(request, "public/blog_list.html", posts=posts, page=page, has_next=has_next)


def _count_view(session: Session, post_id: int) -> int:
    views = blog.count_view(session=session, post_id=post_id)
    # The counter is never part of a cached page, so this write must not drop the blog cache
    # (otherwise every view would empty it).
    unnoticed(session, "blog_posts")
    return views


async def blog_post(request: Request) -> Response:
    await current_user(request)
    post_id = int_or_404(request.path_params["post_id"])
    # Counted first: an unknown or unpublished post is a 404 before anything is cached.
    views = await db(request, lambda s: _count_view(s, post_id))
    post = await cached(
        request,
        f"blog:post:{post_id}",
        "blog",
        lambda s: card(blog.published_post(session=s, post_id=post_id)),
    )
    return render(request, "public/blog_post.html", post=post, views=views)


async def upload(request: Request) -> Response:
    name = str(request.path_params["name"])
    match = UPLOAD_NAME.match(name)
    if not match:
        raise NotFound("no such image")
    path = panel(request).settings.uploads_dir / name
    if not path.is_file():
        raise NotFound("no such image")
    return FileResponse(
        path,
        media_type=IMAGE_TYPES[match.group(1)],
        headers={
            # The type is the one detected at upload; browsers must not guess another (HTML).
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "public, max-age=31536000, immutable",
        },
    )


def _email_of(client: Client | None) -> str | None:
    return client.email if client is not None else None


async def unsubscribe(request: Request) -> Response:
    await current_user(request)
    token = str(request.path_params["token"])
    secret = panel(request).links.secret
    if request.method == "GET":
        found = await db(
            request,
            lambda s: preferences(session=s, token=token, secret=secret),
            readonly=True,
        )
        return render(
            request,
            "public/unsubscribe.html",
            done=False,
            saved=False,
            email=_email_of(found.client),
            public_tags=found.public_tags,
            token=token,
        )
    # RFC 8058 one-click: a mail provider POSTs "List-Unsubscribe=One-Click" with no cookie
    # and no CSRF token; the signed link is the proof, and the action is only ever harmless.
    await db(request, lambda s: clients.unsubscribe(session=s, token=token, secret=secret))
    return render(
        request,
        "public/unsubscribe.html",
        done=True,
        saved=False,
        email=None,
        public_tags=[],
        token=token,
    )


routes: list[BaseRoute] = [
    Route("/", home, name="home"),
    Route("/blog", blog_list, name="blog"),
    Route("/blog/{post_id}", blog_post, name="blog_post"),
    Route("/uploads/{name}", upload, name="upload"),
    Route("/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"], name="unsubscribe"),
]
