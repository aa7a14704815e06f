"""Behaviour that moved with the rules out of the views: throttles that do not tell accounts
apart, the capped CSV upload, paging done by the database."""

from __future__ import annotations

from starlette.testclient import TestClient

from mailctl.web.views import clients as client_views
from tests.support.mail import outbox
from tests.support.web import as_role, logged_in, post_form
from tests.support.world import World


def test_reset_mail_counter_moves_for_unknown_addresses(client, settings, make_user) -> None:
    # Three asks while there is no account use up the window: an account made now gets none.
    for _ in range(3):
        post_form(client, "/password/forgot", {"email": "later@example.com"})
    make_user("user", email="later@example.com")
    assert post_form(client, "/password/forgot", {"email": "later@example.com"}).status_code == 200
    assert outbox(settings) == []


def test_verify_mail_counter_moves_for_unknown_addresses(client, settings, make_user) -> None:
    for _ in range(3):
        post_form(client, "/verify/resend", {"email": "Later@example.com "})
    make_user("user", email="later@example.com", verified=False)
    assert post_form(client, "/verify/resend", {"email": "later@example.com"}).status_code == 200
    assert outbox(settings) == []


def test_mail_counters_are_per_address_and_purpose(client, settings, make_user) -> None:
    make_user("user", email="known@example.com", verified=False)
    for _ in range(3):
        post_form(client, "/password/forgot", {"email": "stranger@example.com"})
        post_form(client, "/verify/resend", {"email": "stranger@example.com"})
    post_form(client, "/password/forgot", {"email": "known@example.com"})
    post_form(client, "/verify/resend", {"email": "known@example.com"})
    assert [m["To"] for m in outbox(settings)] == ["known@example.com"] * 2


def test_csv_upload_over_the_cap_is_cut_off(client: TestClient, world: World, monkeypatch) -> None:
    monkeypatch.setattr(client_views, "MAX_IMPORT_BYTES", 1000)
    as_role(client, world, "owner")
    slack = client_views.IMPORT_BODY_SLACK
    huge = b"email\n" + b"x@example.com\n" * ((slack + 2000) // 14)
    response = post_form(client, "/clients/import", files={"file": ("c.csv", huge, "text/csv")})
    assert response.status_code == 413
    # A file a little over the limit still gets the page with its message.
    over = b"email\n" + b"y@example.com\n" * 80
    response = post_form(client, "/clients/import", files={"file": ("c.csv", over, "text/csv")})
    assert response.status_code == 400 and "larger than" in response.text


def test_csv_upload_in_chunks_is_cut_off(client: TestClient, world: World, monkeypatch) -> None:
    from tests.support.web import csrf

    monkeypatch.setattr(client_views, "MAX_IMPORT_BYTES", 1000)
    as_role(client, world, "owner")
    boundary = "XyZ"
    token = csrf(client)

    def body():  # type: ignore[no-untyped-def]
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.csv"\r\n'
            "Content-Type: text/csv\r\n\r\nemail\n"
        ).encode()
        for _ in range(64):
            yield b"z@example.com\n" * 1000
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post(
        "/clients/import",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413


def test_user_list_pages_and_counts(client, make_user) -> None:
    admin = make_user("admin", email="boss@example.com")
    for i in range(55):
        make_user("user", email=f"u{i:02d}@example.com")
    logged_in(client, admin.email)
    first = client.get("/manage/users")
    assert first.status_code == 200
    assert "u48@example.com" in first.text and "u49@example.com" not in first.text
    second = client.get("/manage/users?page=2")
    assert "u49@example.com" in second.text and "u48@example.com" not in second.text
    assert "(56)" in first.text and "(56)" in second.text  # the total, counted by the database
    filtered = client.get("/manage/users?q=u0&role=user")
    assert "(10)" in filtered.text and "u09@example.com" in filtered.text
    assert "u10@example.com" not in filtered.text


def test_editor_posts_page_by_page(client, make_user) -> None:
    editor = make_user("editor")
    logged_in(client, editor.email)
    for i in range(27):
        post_form(client, "/editor/posts/new", {"title": f"Post {i:02d}", "content": "x"})
    client.get("/editor/posts")  # shows (and drops) the "Saved" flashes
    first = client.get("/editor/posts")
    second = client.get("/editor/posts?page=2")
    assert "Post 26" in first.text and "Post 01" not in first.text
    assert "Post 01" in second.text and "Post 00" in second.text and "Post 26" not in second.text
    assert "(27)" in first.text and "(27)" in second.text


def test_no_template_decides_by_role_name() -> None:
    """Pages show buttons from `caps` (what the services say the user may do); a template
    that compared role names would drift from the rules the services enforce."""
    import re
    from pathlib import Path

    from mailctl.models import Role
    from mailctl.web.pages import TEMPLATES

    names = "|".join(r.value for r in Role)
    tag = re.compile(r"{%-?(.*?)-?%}", re.S)
    # The viewer's role, or a role's name, in a tag (a list may still show a person's role).
    deciding = re.compile(rf"""\buser\.role\b|["']({names})["']""")
    found = [
        f"{path.relative_to(TEMPLATES)}: {{%{block}%}}"
        for path in sorted(Path(TEMPLATES).rglob("*.html"))
        for block in tag.findall(path.read_text())
        if deciding.search(block)
    ]
    assert found == []
    # The capabilities the pages use are the ones the services compute.
    used = {
        m.group(1)
        for path in Path(TEMPLATES).rglob("*.html")
        for m in re.finditer(r"\bcaps\.(\w+)", path.read_text())
    }
    assert used >= {"can_edit_content", "can_manage_users", "can_edit_blog", "can_block"}


def test_the_panel_state_is_one_typed_object(app, settings) -> None:
    import dataclasses

    import pytest
    from starlette.applications import Starlette

    from mailctl.web.state import PanelState, panel_of

    state = panel_of(app)
    assert isinstance(state, PanelState)
    assert state.settings is settings
    assert state.links.base_url == settings.base_url()
    assert state.links.secret == settings.web_secret_key()
    assert state.links.max_age == settings.web.token_max_age
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.engine = None  # type: ignore[misc]
    with pytest.raises(TypeError, match="not a mailctl panel"):
        panel_of(Starlette())
