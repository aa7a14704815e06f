"""The home page figures: total and active mailings, unique client emails across mailings.

A module of its own, with nothing but the models and the access rules below it, so that
`mailctl stats` starts without loading the rest of the services (rendering, templates).

The unique emails are kept by the database (migration 0018's triggers on clients, tags,
mailings and their links): reading them is one row of reach_counts, however many clients
and mailings there are. `count_exactly` is the same figure counted from the audiences, for
the tests and the benchmark to check the kept one against.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select

from mailctl.models import Client, Mailing, MailingStatus, ReachCount, User
from mailctl.services.access import OVERSIGHT_ROLES, ensure_active
from mailctl.services.audiences import in_any_audience

EVERYONE = 0  # the reach_counts row of the figure across every owner


@dataclass(frozen=True)
class Stats:
    total_mailings: int
    active_mailings: int
    unique_clients: int


def _whose(actor: User | None) -> tuple[int | None, ColumnElement[bool] | bool]:
    """Whose figures: a user's own (the owner id and a WHERE on Mailing), or everyone's
    (None, no condition) for the public page, admins and managers."""
    if actor is not None:
        ensure_active(actor)  # a blocked account sees nothing, not even its own figures
    if actor is not None and actor.role not in OVERSIGHT_ROLES:
        return actor.id, col(Mailing.owner_id) == actor.id
    return None, True


def stats(*, session: Session, actor: User | None = None) -> Stats:
    """The home page figures: everyone's for the public page, admins and managers; a user's own."""
    owner, scope = _whose(actor)
    total = session.exec(select(func.count()).select_from(Mailing).where(scope)).one()
    active = session.exec(
        select(func.count())
        .select_from(Mailing)
        .where(scope, Mailing.status == MailingStatus.started.value, Mailing.is_enabled == True)  # noqa: E712
    ).one()
    kept = session.get(ReachCount, EVERYONE if owner is None else owner)
    return Stats(
        total_mailings=total, active_mailings=active, unique_clients=kept.clients if kept else 0
    )


def count_exactly(*, session: Session, actor: User | None = None) -> int:
    """The unique client emails counted from the audiences: one pass over the clients in
    some audience (see in_any_audience), what the kept figure must always equal."""
    _, scope = _whose(actor)
    return session.exec(
        select(func.count(func.distinct(Client.email_key))).where(in_any_audience(scope))
    ).one()
