"""Public sign-up forms with double opt-in.

A visitor posts an address to a form; what comes back is always the same page, whether the
address is new, already a client, suppressed, throttled or caught by the honeypot. Only a
real, new request within the limits leads to an email, with a signed link that expires and
works once. The client exists only once the link's page is confirmed with a button (a POST,
so mail scanners that fetch links confirm nothing), with the form's tags and a consent record.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from mailctl.config import Settings
from mailctl.db import utcnow
from mailctl.errors import Invalid, NotFound, Throttled
from mailctl.models import Client, Consent, SignupForm, SignupFormTag, SpentToken, Tag, User
from mailctl.sending import notices
from mailctl.sending.links import Links
from mailctl.services.access import CONTENT_ROLES, get_visible, owner_scope, require_role
from mailctl.services.accounts import Counters
from mailctl.services.clients import get_client
from mailctl.services.events import CLIENT_SUBSCRIBED, emit
from mailctl.services.suppressions import is_suppressed
from mailctl.services.tagging import ensure_tags, link_tags
from mailctl.services.validation import clean_email, clean_text
from mailctl.tokens import sign, unsign

_PURPOSE = "signup"
WINDOW = 60 * 60
PER_IP = 20  # sign-up posts from one IP per hour, across every form
PER_ADDRESS = 3  # confirmation emails to one address per hour
_SPENT = "this link has already been used or is no longer valid"


@dataclass(frozen=True)
class FormRow:
    form: SignupForm
    tags: list[str]


def form_links(settings: Settings) -> Links:
    """Where a form's public page and its confirmation links point (the CLI's view of them;
    the panel has its own Links)."""
    return Links.from_settings(settings)


def _clean_redirect(url: str) -> str:
    value = (url or "").strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(value) > 500:
        raise Invalid(f"redirect {value[:80]!r}: give a full http(s):// address")
    if any(c in value for c in "\r\n\t <>\"'"):
        raise Invalid("the redirect address contains characters a URL may not have")
    return value


def add_form(
    *, session: Session, actor: User, tags: Sequence[str], title: str = "", redirect_url: str = ""
) -> SignupForm:
    """A form that subscribes confirmed visitors to these tags (made if new)."""
    require_role(actor, CONTENT_ROLES, "create sign-up forms")
    assert actor.id is not None
    if not tags:
        raise Invalid("a sign-up form needs at least one tag")
    name = clean_text(title, field="title", max_len=200, single_line=True)
    target = _clean_redirect(redirect_url)
    found = ensure_tags(session, actor.id, tags)
    form = SignupForm(
        owner_id=actor.id, public_id=secrets.token_urlsafe(16), title=name, redirect_url=target
    )
    session.add(form)
    session.flush()
    session.add_all(SignupFormTag(form_id=form.id or 0, tag_id=t.id or 0) for t in found)
    session.flush()
    return form


def _tag_names(session: Session, form_ids: Sequence[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {i: [] for i in form_ids}
    rows = session.exec(
        select(SignupFormTag.form_id, Tag.name)
        .join(Tag, col(Tag.id) == SignupFormTag.tag_id)
        .where(col(SignupFormTag.form_id).in_(list(form_ids)))
        .order_by(col(Tag.name_key))
    ).all()
    for form_id, name in rows:
        out[form_id].append(name)
    return out


def list_forms(*, session: Session, actor: User) -> list[FormRow]:
    require_role(actor, CONTENT_ROLES, "list sign-up forms")
    forms = session.exec(
        owner_scope(select(SignupForm), SignupForm, actor).order_by(col(SignupForm.id))
    ).all()
    names = _tag_names(session, [f.id or 0 for f in forms])
    return [FormRow(form=f, tags=names[f.id or 0]) for f in forms]


def get_form(*, session: Session, actor: User, form_id: int) -> FormRow:
    require_role(actor, CONTENT_ROLES, "see sign-up forms")
    form = get_visible(session, SignupForm, form_id, actor)
    return FormRow(form=form, tags=_tag_names(session, [form_id])[form_id])


def delete_form(*, session: Session, actor: User, form_id: int) -> None:
    """Its public URL stops working; clients who joined through it stay (consent keeps the
    time and IP, no longer the form)."""
    require_role(actor, CONTENT_ROLES, "delete sign-up forms")
    session.delete(get_visible(session, SignupForm, form_id, actor))


def list_consents(*, session: Session, actor: User, client_id: int) -> list[Consent]:
    """The client's consent records (a double opt-in each), oldest first."""
    client = get_client(session=session, actor=actor, client_id=client_id)
    return list(
        session.exec(
            select(Consent).where(Consent.client_id == client.id).order_by(col(Consent.id))
        ).all()
    )


def snippet(form: SignupForm, links: Links) -> str:
    """HTML to paste into a website: it opens the form's page with the address filled in,
    where the visitor sends it (the page carries the CSRF token a foreign page cannot)."""
    action = links.url(f"/subscribe/{form.public_id}")
    return (
        f'<form action="{action}" method="get">\n'
        '  <input type="email" name="email" required placeholder="you@example.com">\n'
        '  <button type="submit">Subscribe</button>\n'
        "</form>"
    )


def public_form(*, session: Session, public_id: str) -> FormRow:
    """The form behind a public URL; NotFound (one message) for any other string."""
    form = session.exec(select(SignupForm).where(SignupForm.public_id == public_id[:32])).first()
    if form is None:
        raise NotFound("this sign-up form does not exist")
    return FormRow(form=form, tags=_tag_names(session, [form.id or 0])[form.id or 0])


@dataclass(frozen=True)
class Confirmation:
    """The email a sign-up decided on (sent by the adapter after answering)."""

    to: str
    link: str
    title: str
    hours: int


@dataclass(frozen=True)
class Requested:
    address: str
    email: Confirmation | None  # None: nothing to send, the page says the same


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def request_signup(
    *,
    session: Session,
    links: Links,
    counters: Counters,
    public_id: str,
    email: str,
    full_name: str = "",
    ip: str = "",
    honeypot: str = "",
) -> Requested:
    """A visitor's post. Invalid for a malformed address, Throttled past the per-IP bound
    (both say nothing about the address); anything else gives the same answer."""
    found = public_form(session=session, public_id=public_id)
    if counters.bump(f"throttle:signup:ip:{_digest(ip)}", WINDOW) > PER_IP:
        raise Throttled("too many sign-ups from here; try again in an hour", retry_after=WINDOW)
    address = clean_email(email)
    name = clean_text(full_name, field="name", max_len=200, single_line=True)
    if honeypot.strip():  # a field people never see: only bots fill it in
        return Requested(address, None)
    key = address.lower()
    # Counted for every address, suppressed or not, so the counter tells nothing either.
    within = counters.bump(f"throttle:signup:mail:{_digest(key)}", WINDOW) <= PER_ADDRESS
    form = found.form
    if not within or is_suppressed(session, owner_id=form.owner_id, email=key, secret=links.secret):
        return Requested(address, None)
    token = sign(
        links.secret,
        _PURPOSE,
        {
            "f": form.id,
            "e": address,
            "n": name,
            "ip": ip[:45],
            "t": int(utcnow().timestamp()),
            "x": secrets.token_urlsafe(12),
        },
    )
    hours = max(1, links.max_age // 3600)
    return Requested(
        address,
        Confirmation(address, links.url(f"/subscribe/confirm/{token}"), form.title, hours),
    )


def send_confirmation(*, settings: Settings, email: Confirmation) -> None:
    """Never raises: a failure is logged by `notices` (the visitor may simply post again)."""
    what = f" to {email.title}" if email.title else ""
    notices.send_notice(
        settings=settings,
        to=email.to,
        subject=f"Confirm your subscription{what}",
        body=(
            f"Someone (hopefully you) asked to subscribe this address{what}.\n\n"
            "Open this link and press the button to confirm:\n\n"
            f"{email.link}\n\n"
            f"The link works once and expires in {email.hours} hour(s).\n"
            "If you did not ask for this, ignore this message: nothing happens without you.\n"
        ),
    )


@dataclass(frozen=True)
class Pending:
    """What a confirmation link stands for (the page shows it before the button)."""

    form: SignupForm
    email: str
    full_name: str
    ip: str
    requested_at: datetime
    nonce: str


def _pending(session: Session, links: Links, token: str) -> Pending:
    payload = unsign(links.secret, _PURPOSE, token, max_age=links.max_age)
    try:
        form_id, email, name = int(payload["f"]), str(payload["e"]), str(payload["n"])
        ip, at, nonce = str(payload["ip"]), int(payload["t"]), str(payload["x"])
    except (KeyError, TypeError, ValueError):
        raise Invalid("this link is not valid") from None
    form = session.get(SignupForm, form_id)
    if form is None:
        raise NotFound("this sign-up form does not exist any more")
    if session.get(SpentToken, _digest(nonce)) is not None:
        raise Invalid(_SPENT)
    return Pending(form, email, name, ip, datetime.fromtimestamp(at, UTC), nonce)


def confirmation_target(*, session: Session, links: Links, token: str) -> Pending:
    """The confirmation page (GET): checks the link, changes nothing."""
    return _pending(session, links, token)


def confirm_signup(*, session: Session, links: Links, token: str) -> tuple[Client | None, str]:
    """The button on the link's page: the client exists from now, with the form's tags and a
    consent record. Returns it (None if the address was suppressed meanwhile) and where to go."""
    pending = _pending(session, links, token)
    form = pending.form
    session.add(SpentToken(digest=_digest(pending.nonce)))
    try:
        session.flush()  # the primary key refuses a second use, even a simultaneous one
    except IntegrityError:
        raise Invalid(_SPENT) from None
    key = pending.email.lower()
    # Old spent links can go: past max_age their signature fails anyway.
    cutoff = datetime.fromtimestamp(utcnow().timestamp() - links.max_age - 3600, UTC)
    session.execute(delete(SpentToken).where(col(SpentToken.spent_at) < cutoff))
    if is_suppressed(session, owner_id=form.owner_id, email=key, secret=links.secret):
        return None, form.redirect_url
    client = session.exec(
        select(Client).where(Client.owner_id == form.owner_id, Client.email_key == key)
    ).first()
    if client is None:
        client = Client(
            owner_id=form.owner_id, email=pending.email, email_key=key, full_name=pending.full_name
        )
        session.add(client)
        session.flush()
    tag_ids = session.exec(
        select(SignupFormTag.tag_id).where(SignupFormTag.form_id == form.id)
    ).all()
    tags = session.exec(select(Tag).where(col(Tag.id).in_(list(tag_ids)))).all()
    link_tags(session, client.id or 0, list(tags))
    session.add(
        Consent(
            client_id=client.id or 0,
            form_id=form.id,
            ip=pending.ip,
            requested_at=pending.requested_at,
        )
    )
    session.flush()
    emit(
        session,
        form.owner_id,
        CLIENT_SUBSCRIBED,
        {
            "client_id": client.id,
            "email": client.email,
            "full_name": client.full_name,
            "form_id": form.id,
            "tags": sorted(t.name for t in tags),
            "via": "signup",
        },
    )
    return client, form.redirect_url
