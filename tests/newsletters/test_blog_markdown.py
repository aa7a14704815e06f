"""Blog posts are Markdown, rendered and sanitised with nh3 on the blog and the home page;
the editor's form previews a post as the blog will show it."""

from __future__ import annotations

from datetime import UTC, datetime

from mailctl.db import session_scope
from mailctl.models import User
from mailctl.services import blog
from mailctl.services.blog_html import post_html
from tests.support.web import logged_in, post_form

HOSTILE = """## Launch day

We are **live**. Read [the docs](https://example.com/docs) or [mail us](mailto:hi@example.com).

<script>alert('x')</script>
<img src="https://example.com/a.png" onerror="alert('img')" alt="pic">
[bad](javascript:alert('link')) <a href="javascript:alert(1)" onclick="alert(2)">raw</a>
<p style="position:fixed">styled</p> <iframe src="https://evil.example"></iframe>
"""


def test_markdown_is_rendered_and_sanitised() -> None:
    html = post_html(HOSTILE)
    assert "<h2>Launch day</h2>" in html and "<strong>live</strong>" in html
    assert (
        '<a href="https://example.com/docs" rel="noopener noreferrer nofollow">the docs</a>' in html
    )
    assert 'href="mailto:hi@example.com"' in html
    assert '<img src="https://example.com/a.png" alt="pic">' in html
    for gone in (
        "<script",
        "alert('x')",
        "onerror",
        "onclick",
        'href="javascript:',
        "style=",
        "<iframe",
    ):
        assert gone not in html, gone
    assert ">raw</a>" in html  # the link's text stays, its target does not


def test_blog_and_home_pages_show_the_sanitised_post(client, engine, make_user) -> None:
    editor = make_user("editor")
    with session_scope(engine) as session:
        post = blog.add_post(
            session=session,
            actor=session.get(User, editor.id),
            title="Launch",
            content=HOSTILE,
            published_at=datetime(2020, 1, 1, tzinfo=UTC),
        )
        post_id = post.id
    page = client.get(f"/blog/{post_id}")
    assert page.status_code == 200
    assert "<strong>live</strong>" in page.text and 'href="https://example.com/docs"' in page.text
    assert "<script>alert" not in page.text and "onerror" not in page.text
    assert 'href="javascript:' not in page.text
    home = client.get("/")
    assert "Launch" in home.text and "We are live." in home.text  # the excerpt, as text
    assert "<strong>live" not in home.text and "<script>alert" not in home.text


def test_the_editor_previews_without_saving(client, engine, make_user) -> None:
    editor = make_user("editor")
    logged_in(client, editor.email)
    response = post_form(
        client,
        "/editor/posts/new",
        {"title": "Draft", "content": HOSTILE, "published_at": "", "action": "preview"},
    )
    assert response.status_code == 200
    assert 'id="post-preview"' in response.text and "<h2>Launch day</h2>" in response.text
    assert "<script>alert" not in response.text.split('id="post-preview"')[1]
    assert "Launch day" in response.text  # the form keeps what was typed
    with session_scope(engine, readonly=True) as session:
        assert blog.count_posts(session=session, actor=session.get(User, editor.id)) == 0
