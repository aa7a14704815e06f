"""Public sign-up with double opt-in, through the panel's real pages and a real SMTP server
(aiosmtpd) for the confirmation mail; the preference page behind the unsubscribe link."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from mailctl.db import session_scope
from mailctl.models import Client, ClientTag, Consent, Tag, User
from mailctl.sending.links import Links
from mailctl.services import signups, suppressions, tags
from mailctl.tokens import sign
from mailctl.web.app import create_app
from tests.support.smtp import Sink
from tests.support.web import csrf

SECRET = "signup-test-secret-key"


@pytest.fixture
def site(
    engine: Engine, make_user: Callable[..., User], sink: Sink, smtp_settings: Any, monkeypatch
) -> Iterator[tuple[TestClient, str, User]]:
    monkeypatch.setenv("MAILCTL_WEB_SECRET_KEY", SECRET)
    settings = smtp_settings(sink.port, web_base_url="https://news.example.org")
    owner = make_user("user", email="shop@example.com")
    with session_scope(engine) as session:
        actor = session.get(User, owner.id)
        assert actor is not None
        form = signups.add_form(
            session=session, actor=actor, tags=["news", "Offers"], title="Shop news"
        )
        public_id = form.public_id
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        yield client, public_id, owner


def _clients(engine: Engine) -> list[tuple[str, str, list[str]]]:
    with session_scope(engine, readonly=True) as session:
        found = []
        for c in session.exec(select(Client).order_by(Client.id)).scalars():  # type: ignore[call-overload]
            names = session.exec(
                select(Tag.name)
                .join(ClientTag, ClientTag.tag_id == Tag.id)  # type: ignore[arg-type]
                .where(ClientTag.client_id == c.id)
                .order_by(Tag.name_key)
            ).scalars()  # type: ignore[call-overload]
            found.append((c.email, c.full_name, list(names)))
        return found


def _post(client: TestClient, public_id: str, **data: str) -> Any:
    client.get(f"/subscribe/{public_id}")
    return client.post(f"/subscribe/{public_id}", data={"csrf_token": csrf(client), **data})


def _link(sink: Sink, n: int = -1) -> str:
    message = email.message_from_bytes(
        sink.handler.envelopes[n].content, policy=email.policy.default
    )
    body = message.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
    match = re.search(r"https://news\.example\.org(/subscribe/confirm/\S+)", body.get_content())
    assert match, body.get_content()
    return match.group(1)


def test_double_opt_in_creates_the_client_only_on_confirming(site, sink: Sink, engine) -> None:
    client, public_id, owner = site
    page = client.get(f"/subscribe/{public_id}?email=ann@example.com")
    assert page.status_code == 200 and 'value="ann@example.com"' in page.text
    done = _post(client, public_id, email="ann@example.com", full_name="Ann Lee")
    assert done.status_code == 200 and "on its way" in done.text
    assert sink.handler.rcpts() == ["ann@example.com"]
    assert _clients(engine) == []  # nobody before confirming
    link = _link(sink)
    # Opening the link (what a mail scanner does) changes nothing; the button does.
    page = client.get(link)
    assert page.status_code == 200 and "Yes, subscribe me" in page.text
    assert _clients(engine) == []
    confirmed = client.post(link, data={"csrf_token": csrf(client)})
    assert confirmed.status_code == 200 and "confirmed" in confirmed.text
    assert _clients(engine) == [("ann@example.com", "Ann Lee", ["news", "Offers"])]
    with session_scope(engine, readonly=True) as session:
        (consent,) = session.exec(select(Consent)).scalars()  # type: ignore[call-overload]
        assert consent.ip and consent.form_id and consent.confirmed_at >= consent.requested_at
        ann_id = session.exec(select(Client.id)).scalar_one()  # type: ignore[call-overload]
        owner_row = session.get(User, owner.id)
        (listed,) = signups.list_consents(session=session, actor=owner_row, client_id=ann_id)
        assert listed.id == consent.id
    # Replayed: refused, nothing more.
    again = client.post(link, data={"csrf_token": csrf(client)})
    assert again.status_code == 400 and "already been used" in again.text
    assert client.get(link).status_code == 400
    with session_scope(engine, readonly=True) as session:
        assert session.execute(select(func.count()).select_from(Consent)).scalar_one() == 1


def test_tampered_expired_and_foreign_links_are_refused(site, sink: Sink, engine) -> None:
    client, public_id, _ = site
    _post(client, public_id, email="bob@example.com")
    link = _link(sink)
    token = link.rsplit("/", 1)[1]
    tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    assert client.get(tampered).status_code == 400
    assert client.post(tampered, data={"csrf_token": csrf(client)}).status_code == 400
    # Signed for another purpose (an unsubscribe link's secret and shape): not a sign-up.
    other = sign(SECRET, "verify", {"f": 1, "e": "x@example.com"})
    assert client.get(f"/subscribe/confirm/{other}").status_code == 400
    # Without the CSRF token of the page, the button does nothing.
    assert client.post(link, data={}).status_code == 403
    assert _clients(engine) == []
    with session_scope(engine) as session, pytest.raises(Exception, match="expired"):
        signups.confirm_signup(
            session=session,
            links=Links(base_url="https://x", secret=SECRET, max_age=-1),
            token=token,
        )


def test_same_answer_for_any_address_and_no_mail_where_none_is_due(site, sink: Sink, engine):
    client, public_id, owner = site
    with session_scope(engine) as session:
        actor = session.get(User, owner.id)
        suppressions.add_suppression(
            session=session, actor=actor, email="gone@example.com", secret=SECRET
        )
        from mailctl.services.clients import add_client

        add_client(session=session, actor=actor, email="known@example.com")
    pages = {}
    for address in ("new@example.com", "known@example.com", "gone@example.com"):
        response = _post(client, public_id, email=address)
        assert response.status_code == 200
        pages[address] = response.text.replace(address, "ADDRESS")
    bot = _post(client, public_id, email="bot@example.com", website="http://spam.example")
    pages["bot"] = bot.text.replace("bot@example.com", "ADDRESS")
    assert len(set(pages.values())) == 1
    # The known client may confirm too (it gets the tags); the suppressed one and the bot get
    # nothing at all.
    assert sorted(sink.handler.rcpts()) == ["known@example.com", "new@example.com"]
    bad = _post(client, public_id, email="not-an-address")
    assert bad.status_code == 400 and "invalid email" in bad.text
    assert client.get("/subscribe/nonexistent-form").status_code == 404


def test_throttled_per_address_and_per_ip(site, sink: Sink, monkeypatch) -> None:
    client, public_id, _ = site
    for _ in range(signups.PER_ADDRESS + 2):
        assert _post(client, public_id, email="flood@example.com").status_code == 200
    assert sink.handler.rcpts() == ["flood@example.com"] * signups.PER_ADDRESS
    monkeypatch.setattr(signups, "PER_IP", signups.PER_ADDRESS + 3)  # 5 posts so far, 1 more
    assert _post(client, public_id, email="one-more@example.com").status_code == 200
    refused = _post(client, public_id, email="and-another@example.com")
    assert refused.status_code == 429
    assert "and-another@example.com" not in sink.handler.rcpts()


def test_preference_page_leaves_only_the_public_tags_unticked(site, engine) -> None:
    client, _, owner = site
    with session_scope(engine) as session:
        actor = session.get(User, owner.id)
        from mailctl.services.clients import add_client

        ann = add_client(
            session=session, actor=actor, email="ann@example.com", tags=["news", "Offers", "vip"]
        )
        tags.set_tag_public(session=session, actor=actor, name="news", public=True)
        tags.set_tag_public(session=session, actor=actor, name="offers", public=True)
        ann_id = ann.id
    token = sign(SECRET, "unsubscribe", ann_id)
    page = client.get(f"/unsubscribe/{token}")
    assert page.status_code == 200
    assert "news" in page.text and "Offers" in page.text and "vip" not in page.text
    news_id = int(
        re.search(r'value="(\d+)" id="tag-\d+" checked>\s*<label[^>]*>news', page.text).group(1)
    )  # type: ignore[union-attr]
    saved = client.post(
        f"/unsubscribe/{token}/preferences", data={"csrf_token": csrf(client), "keep": [news_id]}
    )
    assert saved.status_code == 200 and "saved" in saved.text
    assert _clients(engine) == [("ann@example.com", "", ["news", "vip"])]
    # A forged token: refused; no CSRF token: refused.
    assert client.get(f"/unsubscribe/{token}x").status_code == 400
    assert client.post(f"/unsubscribe/{token}/preferences", data={"keep": []}).status_code == 403
