"""The blog editor's pages: access by role, create/edit/delete, images, publication dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from mailctl.db import session_scope
from mailctl.models import BlogPost
from tests.support.web import csrf, logged_in, post_form

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
GIF = b"GIF89a" + b"\x00" * 32
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def _post(engine, **kw):  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        post = BlogPost(title=kw.pop("title", "Existing"), content=kw.pop("content", "Text"), **kw)
        s.add(post)
        s.flush()
        return post.id


def _posts(engine) -> list[BlogPost]:  # type: ignore[no-untyped-def]
    with session_scope(engine, readonly=True) as s:
        return list(s.exec(select(BlogPost).order_by(BlogPost.id)))


def submit(
    client, url, *, title="A title", content="Some content", published_at="", image=None, **extra
):  # type: ignore[no-untyped-def]
    data = {
        "csrf_token": csrf(client),
        "title": title,
        "content": content,
        "published_at": published_at,
        **extra,
    }
    files = (
        {"image": image} if image is not None else {"image": ("", b"", "application/octet-stream")}
    )
    return client.post(url, data=data, files=files)


def _uploads(settings) -> list[str]:  # type: ignore[no-untyped-def]
    folder = settings.uploads_dir
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# -- access ----------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/editor/posts"),
    ("GET", "/editor/posts/new"),
    ("POST", "/editor/posts/new"),
    ("GET", "/editor/posts/{id}"),
    ("POST", "/editor/posts/{id}"),
    ("POST", "/editor/posts/{id}/delete"),
]


@pytest.mark.parametrize("method,path", ROUTES)
@pytest.mark.parametrize(
    "who,get_status,post_status",
    [
        ("anonymous", 303, 303),
        ("blocked", 303, 303),
        ("user", 403, 403),
        ("manager", 403, 403),
        ("editor", 200, 303),
        ("admin", 200, 303),
    ],
)
def test_roles(client, engine, make_user, method, path, who, get_status, post_status) -> None:
    post_id = _post(engine)
    if who == "blocked":
        user = make_user("editor")
        logged_in(client, user.email)
        with session_scope(engine) as s:
            from mailctl.models import User

            row = s.get(User, user.id)
            row.is_active = False
            s.add(row)
    elif who != "anonymous":
        logged_in(client, make_user(who).email)
    url = path.replace("{id}", str(post_id))
    if method == "GET":
        response = client.get(url)
        assert response.status_code == get_status
    else:
        response = submit(client, url) if not url.endswith("/delete") else post_form(client, url)
        assert response.status_code == post_status, response.text[:400]
        if post_status == 403:
            assert len(_posts(engine)) == 1 and _posts(engine)[0].title == "Existing"
    if response.status_code == 303 and who in ("anonymous", "blocked"):
        assert response.headers["location"].startswith("/login")


@pytest.mark.parametrize(
    "role,status", [("editor", 404), ("admin", 404), ("user", 403), ("manager", 403)]
)
@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/editor/posts/999"),
        ("POST", "/editor/posts/999"),
        ("POST", "/editor/posts/999/delete"),
        ("GET", "/editor/posts/x"),
    ],
)
def test_unknown_post(client, make_user, role, status, method, path) -> None:
    logged_in(client, make_user(role).email)
    response = client.get(path) if method == "GET" else submit(client, path)
    assert response.status_code == status


# -- writing posts ---------------------------------------------------------------------------


def test_create_publish_and_show_on_home(client, engine, settings, make_user) -> None:
    editor = make_user("editor")
    logged_in(client, editor.email)
    assert "No posts" in client.get("/").text  # cached: the new post must still show up
    response = submit(
        client,
        "/editor/posts/new",
        title="Launch day",
        content="We are live.\n\nSecond paragraph.",
        published_at="2020-01-15T10:00",
        image=("photo.png", PNG, "image/png"),
    )
    assert response.status_code == 303 and response.headers["location"] == "/editor/posts"
    (post,) = _posts(engine)
    assert post.author_id == editor.id
    # Entered in the configured zone (Europe/Berlin, UTC+1 in January), stored in UTC.
    assert post.published_at == datetime(2020, 1, 15, 9, 0, tzinfo=UTC)
    assert post.image and post.image in _uploads(settings)
    listing = client.get("/editor/posts")
    assert "Launch day" in listing.text and "published" in listing.text and "Saved" in listing.text
    home = client.get("/")
    assert "Launch day" in home.text and f"/uploads/{post.image}" in home.text
    detail = client.get(f"/blog/{post.id}")
    assert "Second paragraph." in detail.text
    image = client.get(f"/uploads/{post.image}")
    assert image.status_code == 200 and image.content == PNG
    edit = client.get(f"/editor/posts/{post.id}")
    assert 'value="2020-01-15T10:00"' in edit.text


def test_draft_and_scheduled_posts_stay_private(client, engine, make_user) -> None:
    logged_in(client, make_user("editor").email)
    submit(client, "/editor/posts/new", title="Draft one")
    future = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    submit(client, "/editor/posts/new", title="Coming soon", published_at=future)
    listing = client.get("/editor/posts").text
    assert "draft" in listing and "scheduled" in listing
    for path in ("/", "/blog"):
        text = client.get(path).text
        assert "Draft one" not in text and "Coming soon" not in text
    for post in _posts(engine):
        assert client.get(f"/blog/{post.id}").status_code == 404


def test_edit_replace_and_remove_image(client, engine, settings, make_user) -> None:
    logged_in(client, make_user("admin").email)
    submit(
        client,
        "/editor/posts/new",
        title="Pics",
        published_at="2020-01-01T00:00",
        image=("a.png", PNG, "image/png"),
    )
    (post,) = _posts(engine)
    first = post.image
    response = submit(
        client,
        f"/editor/posts/{post.id}",
        title="Pics v2",
        published_at="2020-01-01T00:00",
        image=("b.gif", GIF, "image/gif"),
    )
    assert response.status_code == 303
    (post,) = _posts(engine)
    assert post.title == "Pics v2" and post.image != first and post.image.endswith(".gif")
    assert _uploads(settings) == [post.image]  # the replaced file is gone
    assert "Pics v2" in client.get(f"/blog/{post.id}").text  # the cached page was dropped
    submit(client, f"/editor/posts/{post.id}", title="Pics v2", published_at="", remove_image="1")
    (post,) = _posts(engine)
    assert post.image is None and post.published_at is None
    assert _uploads(settings) == []


def test_edit_keeps_the_image_when_none_is_sent(client, engine, make_user) -> None:
    logged_in(client, make_user("editor").email)
    submit(client, "/editor/posts/new", image=("w.webp", WEBP, "image/webp"))
    (post,) = _posts(engine)
    submit(client, f"/editor/posts/{post.id}", title="Renamed")
    (after,) = _posts(engine)
    assert after.title == "Renamed" and after.image == post.image and after.image.endswith(".webp")


def test_delete_post_and_its_image(client, engine, settings, make_user) -> None:
    logged_in(client, make_user("editor").email)
    submit(
        client,
        "/editor/posts/new",
        published_at="2020-01-01T00:00",
        image=("a.jpg", JPEG, "image/jpeg"),
    )
    (post,) = _posts(engine)
    assert client.get(f"/blog/{post.id}").status_code == 200
    response = post_form(client, f"/editor/posts/{post.id}/delete")
    assert response.status_code == 303
    assert _posts(engine) == [] and _uploads(settings) == []
    assert "Deleted" in client.get("/editor/posts").text
    assert client.get(f"/blog/{post.id}").status_code == 404


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"title": ""}, "title"),
        ({"content": ""}, "content"),
        ({"title": "x" * 201}, "title"),
        ({"published_at": "next tuesday"}, "cannot read time"),
    ],
)
def test_form_errors_keep_values_and_leave_no_file(
    client, engine, settings, make_user, fields, message
) -> None:
    logged_in(client, make_user("editor").email)
    values = {"title": "Kept title", "content": "Kept content", **fields}
    response = submit(client, "/editor/posts/new", image=("a.png", PNG, "image/png"), **values)
    assert response.status_code == 400
    assert message in response.text
    assert "Kept content" in response.text or "Kept title" in response.text
    assert _posts(engine) == [] and _uploads(settings) == []


# -- uploads ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,data,ctype",
    [
        ("x.svg", SVG, "image/svg+xml"),
        ("x.png", b"<html><script>alert(1)</script></html>", "image/png"),
        ("x.txt", b"hello", "text/plain"),
        ("x.png", b"\x89PN", "image/png"),
    ],
)
def test_wrong_image_types_are_refused(
    client, engine, settings, make_user, name, data, ctype
) -> None:
    logged_in(client, make_user("editor").email)
    response = submit(client, "/editor/posts/new", image=(name, data, ctype))
    assert response.status_code == 400
    assert "PNG, JPEG, GIF or WebP" in response.text
    assert _posts(engine) == [] and _uploads(settings) == []


def test_png_header_with_html_body_is_served_as_an_image(
    client, engine, settings, make_user
) -> None:
    logged_in(client, make_user("editor").email)
    polyglot = b"\x89PNG\r\n\x1a\n<html><body><script>alert(1)</script></body></html>"
    response = submit(client, "/editor/posts/new", image=("evil.html", polyglot, "text/html"))
    assert response.status_code == 303
    (post,) = _posts(engine)
    assert post.image.endswith(".png")
    served = client.get(f"/uploads/{post.image}")
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in served.headers["content-security-policy"]


def test_upload_name_is_generated(client, engine, settings, make_user) -> None:
    logged_in(client, make_user("editor").email)
    submit(client, "/editor/posts/new", image=("../../../evil.png", PNG, "image/png"))
    (post,) = _posts(engine)
    assert "evil" not in post.image and ".." not in post.image
    assert _uploads(settings) == [post.image]
    assert not (settings.data_dir / "evil.png").exists()


@pytest.fixture
def small_uploads(settings, engine):  # type: ignore[no-untyped-def]
    from mailctl.web.app import create_app

    app = create_app(settings.with_overrides("web", max_upload_bytes=1000))
    with TestClient(app, follow_redirects=False) as c:
        yield c


def test_image_over_the_limit_is_refused(small_uploads, engine, settings, make_user) -> None:
    client = small_uploads
    logged_in(client, make_user("editor").email)
    ok = submit(
        client, "/editor/posts/new", image=("a.png", PNG + b"\x00" * (1000 - len(PNG)), "image/png")
    )
    assert ok.status_code == 303
    too_big = submit(
        client, "/editor/posts/new", image=("b.png", PNG + b"\x00" * (1001 - len(PNG)), "image/png")
    )
    assert too_big.status_code == 400 and "too large" in too_big.text
    assert len(_posts(engine)) == 1 and len(_uploads(settings)) == 1


def test_huge_body_is_cut_off(small_uploads, engine, settings, make_user) -> None:
    client = small_uploads
    logged_in(client, make_user("editor").email)
    huge = PNG + b"\x00" * (2 * 1024 * 1024)
    response = submit(client, "/editor/posts/new", image=("a.png", huge, "image/png"))
    assert response.status_code == 413
    assert _posts(engine) == [] and _uploads(settings) == []


def test_huge_chunked_body_is_cut_off(small_uploads, engine, settings, make_user) -> None:
    client = small_uploads
    logged_in(client, make_user("editor").email)
    boundary = "XyZ"
    token = csrf(client)

    def body():  # type: ignore[no-untyped-def]
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nT\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"\r\n\r\nC\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode() + PNG
        for _ in range(64):
            yield b"\x00" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post(
        "/editor/posts/new",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413
    assert _posts(engine) == [] and _uploads(settings) == []
