"""Mailings: a message, its clients and a schedule; owners edit, managers oversee."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import delete, func
from sqlmodel import Session, select

from mailctl.db import utcnow
from mailctl.errors import Invalid, NotFound
from mailctl.models import (
    Client,
    Delivery,
    Every,
    Mailing,
    MailingClient,
    MailingStatus,
    Message,
    User,
)
from mailctl.models.delivery import OPEN_STATES
from mailctl.scheduling.schedule import first_run, next_run_after
from mailctl.services.access import (
    CONTENT_ROLES,
    OVERSIGHT_ROLES,
    ensure_active,
    get_visible,
    owner_scope,
    require_role,
    sees_everything,
)
from mailctl.services.clients import list_clients
from mailctl.services.messages import list_messages

VIEW_ROLES = CONTENT_ROLES + OVERSIGHT_ROLES


@dataclass(frozen=True)
class Clock:
    """What schedule math needs from the configuration."""

    tz: str = "UTC"
    period_seconds: int | None = None


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
            select(Client.id).where(Client.owner_id == owner_id, Client.id.in_(wanted))  # type: ignore[union-attr]
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
        ids = list(session.exec(select(Client.id).where(Client.owner_id == owner_id)).all())
    else:
        ids = _owned_clients(session, owner_id, client_ids or [])
    if not ids:
        raise Invalid("a mailing needs at least one client")
    return [i for i in ids if i is not None]


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
    clock: Clock = Clock(),
    now: datetime | None = None,
) -> Mailing:
    require_role(actor, CONTENT_ROLES, "create mailings")
    assert actor.id is not None
    now = now or utcnow()
    every = _every(every)
    _check_times(start, end, now)
    message = _message_of(session, actor, actor.id, message_id)
    ids = _pick_clients(session, actor.id, client_ids, all_clients)
    mailing = Mailing(
        owner_id=actor.id,
        message_id=message.id or 0,
        every=every,
        start_at=start,
        end_at=end,
        next_run_at=first_run(start, end, every, tz=clock.tz, period_seconds=clock.period_seconds),
    )
    session.add(mailing)
    session.flush()
    session.add_all(MailingClient(mailing_id=mailing.id or 0, client_id=i) for i in ids)
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


def _listing(stmt, actor: User, status: str | None, limit: int | None, offset: int):  # type: ignore[no-untyped-def]
    """`stmt` (a select over Mailing) narrowed to what list_mailings shows, in its order."""
    require_role(actor, VIEW_ROLES, "see mailings")
    stmt = owner_scope(stmt, Mailing, actor, oversight=True).order_by(Mailing.id)
    if status == "disabled":
        stmt = stmt.where(Mailing.is_enabled == False)  # noqa: E712
    elif status:
        try:
            stmt = stmt.where(Mailing.status == MailingStatus(status).value)
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
    return session.exec(_listing(select(Mailing), actor, status, limit, offset)).all()


@dataclass(frozen=True)
class MailingRow:
    """A mailing with what a page shows next to it."""

    mailing: Mailing
    subject: str
    owner_email: str | None  # None where the actor sees only their own mailings
    client_count: int


def client_counts(*, session: Session, mailing_ids: Iterable[int]) -> dict[int, int]:
    """How many clients each mailing has, in one grouped query (0 for none)."""
    ids = sorted(set(mailing_ids))
    if not ids:
        return {}
    rows = session.exec(
        select(MailingClient.mailing_id, func.count())
        .where(MailingClient.mailing_id.in_(ids))  # type: ignore[attr-defined]
        .group_by(MailingClient.mailing_id)  # type: ignore[arg-type]
    ).all()
    return {i: 0 for i in ids} | {mailing_id: count for mailing_id, count in rows}


def client_count(*, session: Session, mailing: Mailing) -> int:
    return client_counts(session=session, mailing_ids=[mailing.id or 0]).get(mailing.id or 0, 0)


def _rows(
    session: Session, found: Sequence[tuple[Mailing, str | None, str | None]], *, owners: bool
) -> list[MailingRow]:
    counts = client_counts(session=session, mailing_ids=[m.id or 0 for m, _, _ in found])
    return [
        MailingRow(
            mailing=m,
            subject=subject or "",
            owner_email=(email or "") if owners else None,
            client_count=counts.get(m.id or 0, 0),
        )
        for m, subject, email in found
    ]


def _with_names(actor: User, status: str | None, limit: int | None, offset: int):  # type: ignore[no-untyped-def]
    stmt = (
        select(Mailing, Message.subject, User.email)
        .outerjoin(Message, Message.id == Mailing.message_id)  # type: ignore[arg-type]
        .outerjoin(User, User.id == Mailing.owner_id)  # type: ignore[arg-type]
    )
    return _listing(stmt, actor, status, limit, offset)


def list_mailing_rows(
    *,
    session: Session,
    actor: User,
    status: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[MailingRow]:
    """list_mailings with each mailing's subject, client count and (for those who oversee
    everyone's mailings) owner: three queries for the page, whatever its length."""
    found = session.exec(_with_names(actor, status, limit, offset)).all()
    return _rows(session, found, owners=sees_everything(actor, oversight=True))


def get_mailing_row(*, session: Session, actor: User, mailing_id: int) -> MailingRow:
    """get_mailing with its subject, owner's email and client count (the detail page)."""
    mailing = get_mailing(session=session, actor=actor, mailing_id=mailing_id)
    message = session.get(Message, mailing.message_id)
    owner = session.get(User, mailing.owner_id)
    (row,) = _rows(
        session,
        [(mailing, message.subject if message else "", owner.email if owner else "")],
        owners=True,
    )
    return row


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
    return list(
        session.exec(
            select(MailingClient.client_id)
            .where(MailingClient.mailing_id == mailing.id)
            .order_by(MailingClient.client_id)  # type: ignore[arg-type]
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
    """What the add and edit forms start from."""

    mailing: Mailing | None
    client_ids: list[int]
    messages: Sequence[Message]
    clients: Sequence[Client]


def new_mailing_form(*, session: Session, actor: User) -> MailingForm:
    require_role(actor, CONTENT_ROLES, "create mailings")
    assert actor.id is not None
    messages, clients = mailing_form_choices(session=session, actor=actor, owner_id=actor.id)
    return MailingForm(mailing=None, client_ids=[], messages=messages, clients=clients)


def edit_mailing_form(*, session: Session, actor: User, mailing_id: int) -> MailingForm:
    """The mailing with its clients and the choices of its owner; refused like edit_mailing
    (another user's mailing is "not found", a manager may see it but not change it)."""
    mailing = _editable(session, actor, mailing_id)
    messages, clients = mailing_form_choices(
        session=session, actor=actor, owner_id=mailing.owner_id
    )
    return MailingForm(
        mailing=mailing,
        client_ids=mailing_client_ids(session=session, mailing=mailing),
        messages=messages,
        clients=clients,
    )


def recent_mailings(*, session: Session, actor: User, count: int = 5) -> Sequence[Mailing]:
    """The newest of the mailings list_mailings shows this actor, newest first."""
    require_role(actor, VIEW_ROLES, "see mailings")
    stmt = owner_scope(select(Mailing), Mailing, actor, oversight=True)
    newest = stmt.order_by(Mailing.id.desc()).limit(count)  # type: ignore[union-attr]
    return cast(Sequence[Mailing], session.exec(newest).all())


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
    clock: Clock = Clock(),
    now: datetime | None = None,
) -> Mailing:
    mailing = _editable(session, actor, mailing_id)
    now = now or utcnow()
    # Every check before the first change, so a refusal leaves the mailing as it was.
    schedule_changed = start is not None or end is not None or clear_end or every is not None
    new_start = start or mailing.start_at
    new_end = None if clear_end else (end or mailing.end_at)
    new_every = _every(every) if every is not None else mailing.every
    if schedule_changed:
        _check_times(new_start, new_end, now)
    message = None
    if message_id is not None:
        message = _message_of(session, actor, mailing.owner_id, message_id)
    ids = (
        _pick_clients(session, mailing.owner_id, client_ids, all_clients)
        if client_ids is not None or all_clients
        else None
    )
    if message is not None:
        mailing.message_id = message.id or 0
    if ids is not None:
        session.exec(delete(MailingClient).where(MailingClient.mailing_id == mailing.id))  # type: ignore[call-overload]
        session.add_all(MailingClient(mailing_id=mailing.id or 0, client_id=i) for i in ids)
    if schedule_changed:
        mailing.start_at, mailing.end_at, mailing.every = new_start, new_end, new_every
        if mailing.status == MailingStatus.created.value:
            mailing.next_run_at = first_run(
                new_start, new_end, new_every, tz=clock.tz, period_seconds=clock.period_seconds
            )
        else:
            after = max(now, mailing.last_run_at or now)
            mailing.next_run_at = next_run_after(
                new_start,
                new_end,
                new_every,
                after,
                tz=clock.tz,
                period_seconds=clock.period_seconds,
            )
            if mailing.next_run_at is not None and mailing.status == MailingStatus.finished.value:
                mailing.status = MailingStatus.started.value
    mailing.updated_at = now
    session.add(mailing)
    session.flush()
    return mailing


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
        .where(Delivery.mailing_id == mailing.id, Delivery.state.in_(OPEN_STATES))  # type: ignore[attr-defined]
    ).one()
    if not still_open:
        mailing.status = MailingStatus.finished.value
        mailing.updated_at = now
    session.add(mailing)


@dataclass(frozen=True)
class Stats:
    total_mailings: int
    active_mailings: int
    unique_clients: int


def stats(*, session: Session, actor: User | None = None) -> Stats:
    """The home page figures: everyone's for the public page, admins and managers; a user's own."""
    if actor is not None:
        ensure_active(actor)  # a blocked account sees nothing, not even its own figures
    mine = actor is not None and actor.role not in OVERSIGHT_ROLES
    scope = (Mailing.owner_id == actor.id) if mine and actor is not None else True  # noqa: SIM210
    total = session.exec(select(func.count()).select_from(Mailing).where(scope)).one()
    active = session.exec(
        select(func.count())
        .select_from(Mailing)
        .where(scope, Mailing.status == MailingStatus.started.value, Mailing.is_enabled == True)  # noqa: E712
    ).one()
    unique = session.exec(
        select(func.count(func.distinct(Client.email_key)))
        .select_from(MailingClient)
        .join(Client, Client.id == MailingClient.client_id)  # type: ignore[arg-type]
        .join(Mailing, Mailing.id == MailingClient.mailing_id)  # type: ignore[arg-type]
        .where(scope)
    ).one()
    return Stats(total_mailings=total, active_mailings=active, unique_clients=unique)


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
        owned = model.owner_id == actor.id  # type: ignore[attr-defined]
        return int(session.exec(select(func.count()).select_from(model).where(owned)).one())

    return FirstSteps(clients=count(Client), messages=count(Message), mailings=count(Mailing))
