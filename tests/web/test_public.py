"""Public pages: home, blog, uploads, unsubscribe; and the `mailctl web` command."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailctl.db import session_scope, utcnow
from mailctl.models import BlogPost, Client
from mailctl.web.state import panel_of
from tests.support.web import logged_in


def add_post(
    engine, title="Hello", content="Body text", *, published=True, image=None, author=None
):  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        post = BlogPost(
            title=title,
            content=content,
            image=image,
            author_id=author,
            published_at=(utcnow() - timedelta(hours=1)) if published else None,
        )
        s.add(post)
        s.flush()
        return post.id


def test_home_anonymous(client, engine) -> None:
    add_post(engine, "First post")
    response = client.get("/")
    assert response.status_code == 200
    assert 'id="total-mailings">0<' in response.text
    assert "First post" in response.text
    assert "/static/vendor/bootstrap/bootstrap.min.css" in response.text
    assert "/static/mailctl.css" in response.text
    assert "cdn" not in response.text.lower()


def test_home_shows_at_most_three_posts(client, engine) -> None:
    for i in range(5):
        add_post(engine, f"Post number {i}")
    add_post(engine, "Secret draft", published=False)
    text = client.get("/").text
    assert sum(f"Post number {i}" in text for i in range(5)) == 3
    assert "Secret draft" not in text


def test_bootstrap_is_served_locally(client) -> None:
    import hashlib

    from mailctl.web.app import STATIC

    response = client.get("/static/vendor/bootstrap/bootstrap.min.css")
    assert response.status_code == 200
    assert "text/css" in response.headers["content-type"]
    assert response.text.startswith('@charset "UTF-8";/*!\n * Bootstrap  v5.3.9 ')
    # Unchanged from the npm package SOURCE.txt names, and shipped with its licence.
    digest = hashlib.sha256(response.content).hexdigest()
    assert digest == "9caac977a0af0c2229abd397eee3345899c4020da2a1a0b711c1cc543fe3719d"
    assert digest in (STATIC / "vendor/bootstrap/SOURCE.txt").read_text()
    assert "MIT" in (STATIC / "vendor/bootstrap/LICENSE").read_text()
    ours = client.get("/static/mailctl.css")
    assert ours.status_code == 200 and "text/css" in ours.headers["content-type"]
    assert client.get("/static/../app.py").status_code == 404


def test_blog_list_and_paging(client, engine) -> None:
    for i in range(12):
        add_post(engine, f"Entry {i:02d}")
    add_post(engine, "Not yet", published=False)
    first = client.get("/blog")
    assert first.status_code == 200
    assert "Not yet" not in first.text
    assert "page=2" in first.text
    second = client.get("/blog?page=2")
    assert second.status_code == 200
    shown = [i for i in range(12) if f"Entry {i:02d}" in first.text + second.text]
    assert shown == list(range(12))
    assert client.get("/blog?page=9").status_code == 404
    assert client.get("/blog?page=nonsense").status_code == 200


def test_blog_post_detail_counts_views(client, engine) -> None:
    post_id = add_post(engine, "Counted", "Para one\n\nPara two")
    for expected in (1, 2, 3):
        response = client.get(f"/blog/{post_id}")
        assert response.status_code == 200
        assert f'id="views">{expected}<' in response.text
    assert "<p" in response.text and "Para two" in response.text
    with session_scope(engine, readonly=True) as s:
        assert s.get(BlogPost, post_id).views == 3


@pytest.mark.parametrize("path", ["/blog/999", "/blog/abc", "/blog/-1"])
def test_blog_unknown_post_is_404(client, path) -> None:
    assert client.get(path).status_code == 404


def test_blog_draft_and_future_posts_are_404(client, engine) -> None:
    draft = add_post(engine, "Draft", published=False)
    with session_scope(engine) as s:
        future = BlogPost(title="Later", content="x", published_at=utcnow() + timedelta(days=1))
        s.add(future)
        s.flush()
        future_id = future.id
    assert client.get(f"/blog/{draft}").status_code == 404
    assert client.get(f"/blog/{future_id}").status_code == 404
    with session_scope(engine, readonly=True) as s:
        assert s.get(BlogPost, draft).views == 0


@pytest.mark.parametrize("role", ["user", "manager", "editor", "admin"])
def test_public_pages_for_every_role(client, engine, make_user, role) -> None:
    post_id = add_post(engine, "Open to all")
    user = make_user(role)
    logged_in(client, user.email)
    for path in ("/", "/blog", f"/blog/{post_id}"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert user.email in response.text  # the nav knows who is logged in


def test_public_pages_for_blocked_session(client, engine, make_user) -> None:
    from mailctl.models import User

    user = make_user("user")
    logged_in(client, user.email)
    with session_scope(engine) as s:
        row = s.get(User, user.id)
        row.is_active = False
        s.add(row)
    response = client.get("/")
    assert response.status_code == 200
    assert user.email not in response.text
    assert 'href="/login"' in response.text


# -- uploads -------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def test_upload_served_with_type_and_nosniff(client, settings) -> None:
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    name = "ab" * 16 + ".png"
    (settings.uploads_dir / name).write_bytes(PNG)
    response = client.get(f"/uploads/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == PNG


@pytest.mark.parametrize(
    "name",
    [
        "..%2Fmailctl.db",
        "..%2F..%2Fetc%2Fpasswd",
        "%2E%2E%2Fsecret_key",
        "secret_key",
        "AB" * 16 + ".png",
        "ab" * 16 + ".svg",
        "ab" * 16 + ".png.html",
        "ab" * 16 + ".html",
        "missing" + "0" * 25 + ".png",
        "0" * 32 + ".png",
    ],
)
def test_upload_names_are_strict(client, settings, name) -> None:
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "secret_key").write_text("do not serve")
    (settings.uploads_dir / ("ab" * 16 + ".svg")).write_text("<svg/>")
    response = client.get(f"/uploads/{name}")
    assert response.status_code == 404
    assert "do not serve" not in response.text


def test_upload_dot_dot_path_is_refused(client, settings) -> None:
    (settings.data_dir / "secret_key").write_text("do not serve")
    for path in ("/uploads/../secret_key", "/uploads/%2e%2e/secret_key", "/uploads/..\\secret_key"):
        response = client.get(path)
        assert "do not serve" not in response.text
        assert response.status_code == 404


# -- unsubscribe -----------------------------------------------------------------------------


@pytest.fixture
def subscriber(engine, make_user):  # type: ignore[no-untyped-def]
    owner = make_user("user")
    with session_scope(engine) as s:
        c = Client(owner_id=owner.id, email="Reader@Example.com", email_key="reader@example.com")
        s.add(c)
        s.flush()
        return c.id


def _unsubscribe_path(settings, client_id: int) -> str:  # type: ignore[no-untyped-def]
    from mailctl.tokens import sign

    return f"/unsubscribe/{sign(settings.web_secret_key(), 'unsubscribe', client_id)}"


def _unsubscribed(engine, client_id: int) -> bool:  # type: ignore[no-untyped-def]
    with session_scope(engine, readonly=True) as s:
        return s.get(Client, client_id).unsubscribed_at is not None


def test_unsubscribe_get_only_asks(client, engine, settings, subscriber) -> None:
    response = client.get(_unsubscribe_path(settings, subscriber))
    assert response.status_code == 200
    assert 'method="post"' in response.text
    assert "Reader@Example.com" in response.text
    assert not _unsubscribed(engine, subscriber)


def test_unsubscribe_one_click_post_without_cookie_or_csrf(
    client, engine, settings, subscriber
) -> None:
    response = client.post(
        _unsubscribe_path(settings, subscriber), data={"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    assert "unsubscribed" in response.text
    assert _unsubscribed(engine, subscriber)


def test_unsubscribe_url_from_the_engine_works(client, engine, settings, subscriber) -> None:
    from mailctl.sending.links import Links

    url = Links.from_settings(settings).unsubscribe_url(subscriber)
    path = url.split("://", 1)[1].split("/", 1)[1]
    assert client.post("/" + path).status_code == 200
    assert _unsubscribed(engine, subscriber)


@pytest.mark.parametrize("method", ["get", "post"])
def test_unsubscribe_tampered_token(client, engine, settings, subscriber, method) -> None:
    from mailctl.tokens import sign

    good = _unsubscribe_path(settings, subscriber)
    for path in (
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "/unsubscribe/nonsense",
        "/unsubscribe/" + sign("another secret", "unsubscribe", subscriber),
        "/unsubscribe/" + sign(settings.web_secret_key(), "verify", subscriber),
    ):
        response = getattr(client, method)(path)
        assert response.status_code == 400, path
    assert not _unsubscribed(engine, subscriber)


def test_unsubscribe_for_deleted_client_still_answers(client, settings) -> None:
    assert client.post(_unsubscribe_path(settings, 4242)).status_code == 200
    assert client.get(_unsubscribe_path(settings, 4242)).status_code == 200


# -- `mailctl web` ----------------------------------------------------------------------------


def test_web_command_runs_uvicorn(cli, monkeypatch) -> None:
    import uvicorn

    seen: dict = {}

    def fake_run(app, **kwargs):  # type: ignore[no-untyped-def]
        seen["app"], seen["kwargs"] = app, kwargs

    monkeypatch.setattr(uvicorn, "run", fake_run)
    result = cli("web", "--host", "0.0.0.0", "--port", "8123")
    assert result.exit_code == 0, result.output
    assert seen["kwargs"]["host"] == "0.0.0.0"
    assert seen["kwargs"]["port"] == 8123
    assert panel_of(seen["app"]).settings.base_url() == "http://0.0.0.0:8123"
