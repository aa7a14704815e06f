"""The panel's audience pages: tags, the suppression list, sign-up forms, tags and custom
fields on the client form, and erasing; another user's objects are "not found"."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from mailctl.db import session_scope
from mailctl.models import Client, User
from mailctl.services import fields, suppressions
from mailctl.services.tagging import tags_of
from tests.support.web import as_role, post_form
from tests.support.world import World


def test_client_form_edits_tags_and_custom_fields(
    client: TestClient, world: World, engine: Engine
) -> None:
    with session_scope(engine) as session:
        owner = session.get(User, world.users["owner"].id)
        fields.add_field(session=session, actor=owner, name="city")
    as_role(client, world, "owner")
    cid = world.clients["owner"]
    page = client.get(f"/clients/{cid}/edit")
    assert page.status_code == 200 and 'name="attr_city"' in page.text and "Erase" in page.text
    saved = post_form(
        client,
        f"/clients/{cid}/edit",
        {
            "email": "client-of-owner@example.com",
            "full_name": "Client of owner",
            "comment": "",
            "tags": "news, VIP",
            "attr_city": "Riga",
        },
    )
    assert saved.status_code == 303
    with session_scope(engine, readonly=True) as session:
        c = session.get(Client, cid)
        assert c is not None and c.attrs == {"city": "Riga"}
        assert tags_of(session, [cid]) == {cid: ["news", "VIP"]}
    listed = client.get("/clients?tag=vip")
    assert "client-of-owner@example.com" in listed.text and "tagged" in listed.text
    assert "client-of-owner@example.com" not in client.get("/clients?tag=nothing").text
    assert client.get("/clients?tag=a;b").status_code == 200  # no tag can have it: no rows
    tags_page = client.get("/tags")
    assert "news" in tags_page.text and "VIP" in tags_page.text
    post_form(client, "/tags/change", {"name": "news", "action": "public"})
    assert "public" in client.get("/tags").text
    bad = post_form(client, f"/clients/{cid}/edit", {"email": "x@example.com", "tags": "<b>"})
    assert bad.status_code == 400 and "tag &#39;&lt;b&gt;&#39;: use letters" in bad.text


def test_suppression_page_adds_and_lifts_with_a_reason(
    client: TestClient, world: World, engine: Engine, settings
) -> None:
    as_role(client, world, "owner")
    post_form(client, "/suppression/change", {"email": "gone@example.com", "reason": "manual"})
    page = client.get("/suppression")
    assert "gone@example.com" in page.text
    refused = post_form(
        client, "/suppression/change", {"email": "gone@example.com", "action": "remove"}
    )
    assert refused.status_code == 303
    assert "reason must not be empty" in client.get("/suppression").text
    post_form(
        client,
        "/suppression/change",
        {"email": "gone@example.com", "action": "remove", "note": "asked to come back"},
    )
    assert "lifted" in client.get("/suppression").text
    with session_scope(engine, readonly=True) as session:
        owner = session.get(User, world.users["owner"].id)
        assert suppressions.list_suppressions(session=session, actor=owner) == []


def test_forms_page_and_erase_stay_with_their_owner(
    client: TestClient, world: World, engine: Engine
) -> None:
    as_role(client, world, "owner")
    post_form(client, "/forms/new", {"tags": "news", "title": "Our news", "redirect": ""})
    page = client.get("/forms")
    assert "Our news" in page.text and "/subscribe/" in page.text and "&lt;form" in page.text
    bad = post_form(client, "/forms/new", {"tags": "news", "redirect": "javascript:alert(1)"})
    assert bad.status_code == 303 and "http(s)://" in client.get("/forms").text
    as_role(client, world, "other")
    assert "Our news" not in client.get("/forms").text
    cid = world.clients["owner"]
    assert post_form(client, f"/clients/{cid}/erase").status_code == 404
    assert post_form(client, "/forms/1/delete").status_code == 404
    as_role(client, world, "manager")
    assert post_form(client, f"/clients/{cid}/erase").status_code == 403
    as_role(client, world, "owner")
    assert post_form(client, f"/clients/{cid}/erase").status_code == 303
    with session_scope(engine, readonly=True) as session:
        assert session.get(Client, cid) is None


def test_mailing_form_keeps_a_mailing_to_tags_or_to_all(
    client: TestClient, world: World, engine: Engine
) -> None:
    from datetime import timedelta

    from mailctl.db import utcnow
    from mailctl.models import Mailing
    from mailctl.services.clients import add_client

    with session_scope(engine) as session:
        owner = session.get(User, world.users["owner"].id)
        add_client(session=session, actor=owner, email="ann@example.com", tags=["news"])
    as_role(client, world, "owner")
    start = (utcnow() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    form = {"message_id": str(world.messages["owner"]), "start": start, "every": "week"}
    made = post_form(client, "/mailings/new", {**form, "tags": "news"})
    assert made.status_code == 303, made.text
    mailing_id = int(made.headers["location"].rsplit("/", 1)[1])
    page = client.get(f"/mailings/{mailing_id}/edit")
    assert '<option value="news" selected>' in page.text
    # Saved as shown: still a mailing to the tag, not to today's clients of the tag.
    saved = post_form(client, f"/mailings/{mailing_id}/edit", {**form, "tags": "news"})
    assert saved.status_code == 303
    post_form(client, f"/mailings/{mailing_id}/edit", {**form, "all_clients": "1"})
    assert (
        'id="all_clients" name="all_clients" value="1" checked'
        in client.get(f"/mailings/{mailing_id}/edit").text
    )
    with session_scope(engine, readonly=True) as session:
        m = session.get(Mailing, mailing_id)
        assert m is not None and m.audience == "all"
