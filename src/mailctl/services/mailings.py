"""Mailings: a message, its clients and a schedule; owners edit, managers oversee."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from mailctl.db import utcnow
from mailctl.errors import Invalid, NotFound
from mailctl.models import (
    Audience,
    Client,
    Delivery,
    Every,
    Mailing,
    MailingClient,
    MailingStatus,
    MailingTag,
    Message,
    Tag,
    User,
)
from mailctl.models.delivery import OPEN
from mailctl.schedule import Clock
from mailctl.services import figures
from mailctl.services.access import (
    CONTENT_ROLES,
    VIEW_ROLES,
    Q,
    get_visible,
    owner_scope,
    require_role,
)
from mailctl.services.audiences import audience_ids, mailing_tag_names
from mailctl.services.clients import list_clients
from mailctl.services.messages import list_messages
from mailctl.services.tags import find_tags
from mailctl.timeutil import to_local


def _every(value: str) -> str:
    try:
        return Every(value).value
    except ValueError:
        raise Invalid(f"unknown periodicity {value!r}: use once, day, week or month") from None


def _check_times(start: datetime, end: datetime | None, now: datetime) -> None:
    """A start that has passed is fine: the assignment's rule is that a mailing whose start
    has come and whose end has not is sent at once (its first run is simply due). Only an end
    that has passed too leaves nothing to send."""
    if start.tzinfo is None or (end is not None and end.tzinfo is None):
        raise Invalid("times need a time zone")
    if end is not None:
        if end <= start:
            raise Invalid("the end must be after the start")
        if end <= now:
            raise Invalid(
                "the start and the end are both in the past: nothing would be sent"
                if start < now
                else "the end is in the past"
            )


def _owned_clients(session: Session, owner_id: int, client_ids: Sequence[int]) -> list[int]:
    wanted = sorted(set(client_ids))
    found = set(
        session.exec(
            select(Client.id).where(Client.owner_id == owner_id, col(Client.id).in_(wanted))
        ).all()
    )
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFound(f"client {missing[0]} not found")
    return wanted


def _pick_clients(
    session: Session, owner_id: int, client_ids: Sequence[int] | None, all_clients: bool
) -> list[int]:
    if all_clients:
        found = session.exec(select(Client.id).where(Client.owner_id == owner_id)).all()
        ids = [i for i in found if i is not None]
    else:
        ids = _owned_clients(session, owner_id, client_ids or [])
    if not ids:
        raise Invalid("a mailing needs at least one client")
    return ids


@dataclass(frozen=True)
class _Target:
    """Who a mailing goes to: explicit client ids, tags, or all (the last two resolved at
    each run by services/audiences.py)."""

    audience: str
    client_ids: list[int]
    tags: list[Tag]


def _target(
    session: Session,
    owner_id: int,
    client_ids: Sequence[int] | None,
    all_clients: bool,
    tags: Sequence[str] | None,
) -> _Target:
    given = [bool(client_ids), all_clients, bool(tags)]
    if sum(given) > 1:
        raise Invalid("address a mailing to clients, to tags or to all clients, not several")
    if all_clients:
        return _Target(Audience.all.value, [], [])
    if tags:
        return _Target(Audience.tags.value, [], find_tags(session, owner_id, tags))
    return _Target(Audience.clients.value, _pick_clients(session, owner_id, client_ids, False), [])


def _set_target(session: Session, mailing: Mailing, target: _Target) -> None:
    mailing_id = mailing.id or 0
    session.execute(delete(MailingClient).where(col(MailingClient.mailing_id) == mailing_id))
    session.execute(delete(MailingTag).where(col(MailingTag.mailing_id) == mailing_id))
    mailing.audience = target.audience
    session.add_all(MailingClient(mailing_id=mailing_id, client_id=i) for i in target.client_ids)
    session.add_all(MailingTag(mailing_id=mailing_id, tag_id=t.id or 0) for t in target.tags)


def _message_of(session: Session, actor: User, owner_id: int, message_id: int) -> Message:
    message = get_visible(session, Message, message_id, actor)
    if message.owner_id != owner_id:
        raise NotFound(f"message {message_id} not found")
    return message


def add_mailing(
    *,
    session: Session,
    actor: User,
    message_id: int,
    start: datetime,
    every: str = "once",
    end: datetime | None = None,
    client_ids: Sequence[int] | None = None,
    all_clients: bool = False,
    tags: Sequence[str] | None = None,
    clock: Clock,
    now: datetime | None = None,
) -> Mailing:
    require_role(actor, CONTENT_ROLES, "create mailings")
    assert actor.id is not None
    now = now or utcnow()
    every = _every(every)
    _check_times(start, end, now)
    message = _message_of(session, actor, actor.id, message_id)
    target = _target(session, actor.id, client_ids, all_clients, tags)
    mailing = Mailing(
        owner_id=actor.id,
        message_id=message.id or 0,
        every=every,
        start_at=start,
        end_at=end,
        next_run_at=clock.first_run(start, end, every),
    )
    session.add(mailing)
    session.flush()
    _set_target(session, mailing, target)
    session.flush()
    return mailing


def is_due(mailing: Mailing, now: datetime | None = None) -> bool:
    """start <= now < end, enabled, and a run waiting: the send begins without anyone asking."""
    now = now or utcnow()
    return (
        mailing.is_enabled
        and mailing.next_run_at is not None
        and mailing.next_run_at <= now
        and (mailing.end_at is None or now < mailing.end_at)
    )


def listing(stmt: Q, actor: User, status: str | None, limit: int | None, offset: int) -> Q:
    """`stmt` (a select over Mailing) narrowed to what list_mailings shows, in its order."""
    require_role(actor, VIEW_ROLES, "see mailings")
    stmt = owner_scope(stmt, Mailing, actor, oversight=True).order_by(col(Mailing.id))
    if status == "disabled":
        stmt = stmt.where(col(Mailing.is_enabled) == False)  # noqa: E712
    elif status:
        try:
            stmt = stmt.where(col(Mailing.status) == MailingStatus(status).value)
        except ValueError:
            raise Invalid(
                f"unknown status {status!r}: use created, started, finished or disabled"
            ) from None
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    return stmt


def list_mailings(
    *,
    session: Session,
    actor: User,
    status: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> Sequence[Mailing]:
    return session.exec(listing(select(Mailing), actor, status, limit, offset)).all()


def get_mailing(*, session: Session, actor: User, mailing_id: int) -> Mailing:
    require_role(actor, VIEW_ROLES, "see mailings")
    return get_visible(session, Mailing, mailing_id, actor, oversight=True)


def _editable(session: Session, actor: User, mailing_id: int) -> Mailing:
    mailing = get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    # Checked after the lookup so another user's mailing stays "not found" for a plain user,
    # while a manager, who may see it, learns that editing is not theirs to do.
    require_role(actor, CONTENT_ROLES, "change mailings")
    return mailing


def mailing_client_ids(*, session: Session, mailing: Mailing) -> list[int]:
    """The explicit clients; for a mailing to tags or to all, who a run now would reach."""
    if mailing.audience != Audience.clients.value:
        return audience_ids(session, mailing)
    return list(
        session.exec(
            select(MailingClient.client_id)
            .where(MailingClient.mailing_id == mailing.id)
            .order_by(col(MailingClient.client_id))
        ).all()
    )


def mailing_form_choices(
    *, session: Session, actor: User, owner_id: int
) -> tuple[Sequence[Message], Sequence[Client]]:
    """The owner's messages and clients, the ones a mailing of theirs may use (an admin
    editing another user's mailing is offered that owner's, not everyone's)."""
    return (
        list_messages(session=session, actor=actor, owner_id=owner_id),
        list_clients(session=session, actor=actor, owner_id=owner_id),
    )


@dataclass(frozen=True)
class MailingForm:
    """What the add and edit forms start from: the mailing and whom it goes to (explicit
    clients, tags, or all), and the owner's messages, clients and tags to choose from."""

    mailing: Mailing | None
    client_ids: list[int]  # the explicit clients; empty for a mailing to tags or to all
    messages: Sequence[Message]
    clients: Sequence[Client]
    audience: str = Audience.clients.value
    tags: list[str] = field(default_factory=list)  # a mailing to tags: which
    tag_choices: list[str] = field(default_factory=list)


def _tag_choices(session: Session, owner_id: int) -> list[str]:
    return list(
        session.exec(
            select(Tag.name).where(Tag.owner_id == owner_id).order_by(col(Tag.name_key))
        ).all()
    )


def new_mailing_form(*, session: Session, actor: User) -> MailingForm:
    require_role(actor, CONTENT_ROLES, "create mailings")
    assert actor.id is not None
    messages, clients = mailing_form_choices(session=session, actor=actor, owner_id=actor.id)
    return MailingForm(
        mailing=None,
        client_ids=[],
        messages=messages,
        clients=clients,
        tag_choices=_tag_choices(session, actor.id),
    )


def edit_mailing_form(*, session: Session, actor: User, mailing_id: int) -> MailingForm:
    """The mailing with its audience and the choices of its owner; refused like edit_mailing
    (another user's mailing is "not found", a manager may see it but not change it)."""
    mailing = _editable(session, actor, mailing_id)
    messages, clients = mailing_form_choices(
        session=session, actor=actor, owner_id=mailing.owner_id
    )
    explicit = mailing.audience == Audience.clients.value
    return MailingForm(
        mailing=mailing,
        client_ids=mailing_client_ids(session=session, mailing=mailing) if explicit else [],
        messages=messages,
        clients=clients,
        audience=mailing.audience,
        tags=mailing_tag_names(session, mailing.id or 0),
        tag_choices=_tag_choices(session, mailing.owner_id),
    )


def recent_mailings(*, session: Session, actor: User, count: int = 5) -> Sequence[Mailing]:
    """The newest of the mailings list_mailings shows this actor, newest first."""
    require_role(actor, VIEW_ROLES, "see mailings")
    stmt = owner_scope(select(Mailing), Mailing, actor, oversight=True)
    newest = stmt.order_by(col(Mailing.id).desc()).limit(count)
    return session.exec(newest).all()


def _same_minute(new: datetime, old: datetime | None, tz: str) -> bool:
    """Schedule times are typed to the minute on the zone's clock (the panel's fields, the
    CLI's usual form): one in the stored time's minute is the stored time."""
    if old is None:
        return False
    wall = [to_local(t, tz).replace(second=0, microsecond=0, tzinfo=None) for t in (new, old)]
    return wall[0] == wall[1]


def edit_mailing(
    *,
    session: Session,
    actor: User,
    mailing_id: int,
    message_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    clear_end: bool = False,
    every: str | None = None,
    client_ids: Sequence[int] | None = None,
    all_clients: bool = False,
    tags: Sequence[str] | None = None,
    clock: Clock,
    now: datetime | None = None,
) -> Mailing:
    """Change what is given; a value equal to the stored one changes nothing, so a form saved
    as it was is accepted (an unchanged start that has passed is not "a start in the past")."""
    mailing = _editable(session, actor, mailing_id)
    now = now or utcnow()
    # Every check before the first change, so a refusal leaves the mailing as it was.
    if start is not None and _same_minute(start, mailing.start_at, clock.tz):
        start = None
    if end is not None and _same_minute(end, mailing.end_at, clock.tz):
        end = None
    clear_end = clear_end and mailing.end_at is not None
    if every is not None and _every(every) == mailing.every:
        every = None
    schedule_changed = start is not None or end is not None or clear_end or every is not None
    new_start = start or mailing.start_at
    new_end = None if clear_end else (end or mailing.end_at)
    new_every = _every(every) if every is not None else mailing.every
    if schedule_changed:
        _check_times(new_start, new_end, now)
    message = None
    if message_id is not None and message_id != mailing.message_id:
        message = _message_of(session, actor, mailing.owner_id, message_id)
    target = (
        _target(session, mailing.owner_id, client_ids, all_clients, tags)
        if client_ids is not None or all_clients or tags
        else None
    )
    if target is not None and _same_target(session, mailing, target):
        target = None
    if message is not None:
        mailing.message_id = message.id or 0
    if target is not None:
        _set_target(session, mailing, target)
    if schedule_changed:
        mailing.start_at, mailing.end_at, mailing.every = new_start, new_end, new_every
        if mailing.status == MailingStatus.created.value:
            mailing.next_run_at = clock.first_run(new_start, new_end, new_every)
        else:
            after = max(now, mailing.last_run_at or now)
            mailing.next_run_at = clock.next_run_after(new_start, new_end, new_every, after)
            if mailing.next_run_at is not None and mailing.status == MailingStatus.finished.value:
                mailing.status = MailingStatus.started.value
    mailing.updated_at = now
    session.add(mailing)
    session.flush()
    return mailing


def _same_target(session: Session, mailing: Mailing, target: _Target) -> bool:
    if target.audience != mailing.audience:
        return False
    if target.audience == Audience.tags.value:
        have = set(
            session.exec(select(MailingTag.tag_id).where(MailingTag.mailing_id == mailing.id)).all()
        )
        return have == {t.id for t in target.tags}
    if target.audience == Audience.clients.value:
        return set(target.client_ids) == set(mailing_client_ids(session=session, mailing=mailing))
    return True


def delete_mailing(*, session: Session, actor: User, mailing_id: int) -> None:
    session.delete(_editable(session, actor, mailing_id))


def set_enabled(*, session: Session, actor: User, mailing_id: int, enabled: bool) -> Mailing:
    # Whoever may see a mailing may pause it: its owner, any manager, any admin.
    mailing = get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    mailing.is_enabled = enabled
    mailing.updated_at = utcnow()
    session.add(mailing)
    return mailing


def require_sendable(*, session: Session, actor: User, mailing_id: int) -> Mailing:
    """Sending by hand (and retrying) is the owner's or an admin's, on an enabled mailing."""
    mailing = _editable(session, actor, mailing_id)
    if not mailing.is_enabled:
        raise Invalid(f"mailing {mailing_id} is disabled; enable it first")
    return mailing


def display_status(mailing: Mailing) -> str:
    return mailing.status if mailing.is_enabled else f"{mailing.status} (disabled)"


def refresh_status(session: Session, mailing: Mailing, now: datetime | None = None) -> None:
    """Finished once no run is left to start and nothing of the last runs is still open."""
    now = now or utcnow()
    if mailing.end_at is not None and now >= mailing.end_at:
        mailing.next_run_at = None
    if mailing.next_run_at is not None or mailing.status == MailingStatus.finished.value:
        return
    still_open = session.exec(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.mailing_id == mailing.id, col(Delivery.state).in_(OPEN))
    ).one()
    if not still_open:
        mailing.status = MailingStatus.finished.value
        mailing.updated_at = now
    session.add(mailing)


# The home figures live in services/figures.py: `mailctl stats` loads that module alone.
Stats, stats = figures.Stats, figures.stats


@dataclass(frozen=True)
class FirstSteps:
    """How far an account is on the way to its first mailing (the dashboard's guide)."""

    clients: int
    messages: int
    mailings: int

    @property
    def done(self) -> bool:
        return bool(self.clients and self.messages and self.mailings)


def first_steps(*, session: Session, actor: User) -> FirstSteps:
    """The actor's own clients, messages and mailings, counted."""
    require_role(actor, CONTENT_ROLES, "create mailings")

    def count(model: type[Client] | type[Message] | type[Mailing]) -> int:
        owned = col(model.owner_id) == actor.id
        return int(session.exec(select(func.count()).select_from(model).where(owned)).one())

    return FirstSteps(clients=count(Client), messages=count(Message), mailings=count(Mailing))
