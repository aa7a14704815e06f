"""The panel's message pages with formats and layouts: the form, the preview (its HTML only
in a sandboxed frame with its own policy), and the frame route's access rules."""

from __future__ import annotations

import re

from tests.support.web import logged_in, post_form

HOSTILE = (
    "# Hi {{ client.first_name }}\n\n"
    "<script>document.title='pwned-script'</script>\n\n"
    '<img src="x" onerror="document.title=\'pwned-img\'">\n\n'
    "[click](javascript:document.title='pwned-link')\n"
)


def _add_message(client, **data) -> int:  # type: ignore[no-untyped-def]
    response = post_form(client, "/messages/new", data)
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


def test_the_form_offers_formats_and_layouts_and_saves_them(client, make_user) -> None:
    user = make_user()
    logged_in(client, user.email)
    page = client.get("/messages/new").text
    assert 'name="format"' in page and '<option value="markdown" selected>' in page
    assert 'name="layout"' in page
    layout = post_form(
        client,
        "/layouts/new",
        {"name": "Brand", "html": '<div>{{ content }}</div><a href="{{ unsubscribe_url }}">u</a>'},
    )
    assert layout.status_code == 303, layout.text
    layout_id = int(layout.headers["location"].rsplit("/", 1)[1])
    assert f'<option value="{layout_id}"' in client.get("/messages/new").text
    message_id = _add_message(
        client, subject="News", body="**bold**", format="html", layout=str(layout_id)
    )
    detail = client.get(f"/messages/{message_id}").text
    assert "HTML, in the layout “Brand”" in detail
    edit = post_form(
        client,
        f"/messages/{message_id}/edit",
        {"subject": "News", "body": "plain", "format": "text", "layout": ""},
    )
    assert edit.status_code == 303
    assert "Plain text" in client.get(f"/messages/{message_id}").text


def test_a_bad_format_is_a_400_with_the_form_again(client, make_user) -> None:
    user = make_user()
    logged_in(client, user.email)
    response = post_form(client, "/messages/new", {"subject": "S", "body": "B", "format": "pdf"})
    assert response.status_code == 400
    assert "format must be one of markdown, html, text" in response.text


def test_the_preview_shows_html_only_in_a_sandboxed_frame(client, make_user) -> None:
    user = make_user()
    logged_in(client, user.email)
    message_id = _add_message(client, subject="S", body=HOSTILE, format="markdown")
    page = client.get(f"/messages/{message_id}")
    assert page.status_code == 200
    # The message's markup is never part of the panel's page: only escaped, as source or text.
    assert "<script>document.title" not in page.text
    assert 'onerror="document.title' not in page.text
    frame = re.search(r"<iframe[^>]*id=\"preview-html\"[^>]*>", page.text)
    assert frame, page.text
    assert 'sandbox=""' in frame.group(0)
    assert "allow-scripts" not in page.text and "allow-same-origin" not in page.text
    src = re.search(r'src="([^"]+)"', frame.group(0)).group(1).replace("&amp;", "&")
    framed = client.get(src)
    assert framed.status_code == 200
    policy = framed.headers["content-security-policy"]
    assert policy.startswith("sandbox;") and "default-src 'none'" in policy
    assert "script-src" not in policy  # default-src 'none' covers scripts
    assert "frame-ancestors 'self'" in policy
    assert framed.headers["x-frame-options"] == "SAMEORIGIN"
    assert "<script>document.title" in framed.text  # the author's HTML, as written, neutered


def test_other_users_cannot_load_the_frame(client, new_client, make_user) -> None:
    owner, other, manager = make_user(), make_user(), make_user("manager")
    logged_in(client, owner.email)
    message_id = _add_message(client, subject="S", body="hello", format="markdown")
    stranger = logged_in(new_client(), other.email)
    assert stranger.get(f"/messages/{message_id}/preview.html").status_code == 404
    assert stranger.get(f"/messages/{message_id}").status_code == 404
    boss = logged_in(new_client(), manager.email)
    assert boss.get(f"/messages/{message_id}/preview.html").status_code == 403
    anonymous = new_client()
    assert anonymous.get(f"/messages/{message_id}/preview.html").status_code in (302, 303)


def test_view_in_browser_pages(client, engine, settings, make_user) -> None:
    from mailctl.db import session_scope
    from mailctl.models import User
    from mailctl.sending.links import Links
    from mailctl.services.clients import add_client, delete_client
    from mailctl.services.messages import add_message

    owner = make_user()
    with session_scope(engine) as s:
        actor = s.get(User, owner.id)
        message = add_message(
            session=s, actor=actor, subject="S", body="# Hi {{ client.first_name }}"
        )
        person = add_client(session=s, actor=actor, email="ann@example.com", full_name="Ann Lee")
        message_id, client_id = message.id, person.id
    url = Links.from_settings(settings).web_url(message_id, client_id)
    page = client.get(url.replace(settings.base_url(), ""))
    assert page.status_code == 200 and ">Hi Ann</h1>" in page.text
    policy = page.headers["content-security-policy"]
    assert policy.startswith("sandbox;") and "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    path = url.replace(settings.base_url(), "")
    assert client.get(path[:-3] + "abc").status_code == 404  # a forged signature
    assert client.get("/view/not-a-token").status_code == 404
    assert "does nothing" in client.get("/view/test").text
    with session_scope(engine) as s:
        delete_client(session=s, actor=s.get(User, owner.id), client_id=client_id)
    assert client.get(path).status_code == 404  # the recipient was erased


def test_layout_pages(client, new_client, make_user) -> None:
    owner, other = make_user(), make_user()
    logged_in(client, owner.email)
    form = client.get("/layouts/new").text
    assert "{{ content }}" in form  # starts from the default layout
    bad = post_form(client, "/layouts/new", {"name": "Bad", "html": "<p>{{ content }}</p>"})
    assert bad.status_code == 400 and "needs an unsubscribe link" in bad.text
    made = post_form(
        client,
        "/layouts/new",
        {"name": "Brand", "html": '<b>{{ content }}</b><a href="{{ unsubscribe_url }}">u</a>'},
    )
    assert made.status_code == 303
    layout_id = int(made.headers["location"].rsplit("/", 1)[1])
    assert "Brand" in client.get("/layouts").text
    detail = client.get(f"/layouts/{layout_id}").text
    assert f'src="/layouts/{layout_id}/preview.html"' in detail and 'sandbox=""' in detail
    frame = client.get(f"/layouts/{layout_id}/preview.html")
    assert frame.headers["content-security-policy"].startswith("sandbox;")
    assert "<b>" in frame.text and "Our news, Sample" in frame.text
    default = client.get("/layouts/default/preview.html")
    assert default.status_code == 200 and "Unsubscribe" in default.text
    stranger = logged_in(new_client(), other.email)
    for path in (f"/layouts/{layout_id}", f"/layouts/{layout_id}/preview.html"):
        assert stranger.get(path).status_code == 404
    assert post_form(stranger, f"/layouts/{layout_id}/delete").status_code == 404
    edit = post_form(
        client,
        f"/layouts/{layout_id}/edit",
        {"name": "Brand 2", "html": '<i>{{ content }}</i><a href="{{ unsubscribe_url }}">u</a>'},
    )
    assert edit.status_code == 303 and "Brand 2" in client.get("/layouts").text
    assert post_form(client, f"/layouts/{layout_id}/delete").status_code == 303
    assert client.get(f"/layouts/{layout_id}").status_code == 404


def test_a_manager_sees_a_mailings_message_only_framed(client, engine, make_user) -> None:
    from datetime import timedelta

    from mailctl.db import session_scope, utcnow
    from mailctl.models import User
    from mailctl.schedule import Clock
    from mailctl.services.clients import add_client
    from mailctl.services.mailings import add_mailing
    from mailctl.services.messages import add_message

    owner, manager = make_user(), make_user("manager")
    with session_scope(engine) as s:
        actor = s.get(User, owner.id)
        message = add_message(session=s, actor=actor, subject="S", body=HOSTILE, format="html")
        person = add_client(session=s, actor=actor, email="ann@example.com")
        mailing = add_mailing(
            session=s,
            actor=actor,
            message_id=message.id,
            client_ids=[person.id],
            start=utcnow() + timedelta(days=1),
            every="week",
            clock=Clock(tz="UTC", period_seconds=None),
        )
        mailing_id = mailing.id
    logged_in(client, manager.email)
    assert f"/mailings/{mailing_id}/message" in client.get(f"/mailings/{mailing_id}").text
    page = client.get(f"/mailings/{mailing_id}/message")
    assert page.status_code == 200
    assert "<script>document.title" not in page.text and 'sandbox=""' in page.text
    frame = client.get(f"/mailings/{mailing_id}/message.html")
    assert frame.headers["content-security-policy"].startswith("sandbox;")


def test_the_panel_preview_never_carries_the_real_unsubscribe_link(client, make_user) -> None:
    user = make_user()
    logged_in(client, user.email)
    made = post_form(client, "/clients/new", {"email": "ann@example.com", "full_name": "Ann"})
    assert made.status_code == 303
    message_id = _add_message(
        client, subject="S", body="[leave]({{ unsubscribe_url }})", format="markdown"
    )
    page = client.get(f"/messages/{message_id}").text
    assert "/unsubscribe/" not in page and "this client&#39;s own unsubscribe link" in page
    frame = client.get(f"/messages/{message_id}/preview.html?client=1").text
    assert "/unsubscribe/" not in frame and "/view/" in frame
