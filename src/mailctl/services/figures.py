"""The home page figures: total and active mailings, unique client emails across mailings.

A module of its own, with nothing but the models and the access rules below it, so that
`mailctl stats` starts without loading the rest of the services (rendering, templates).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, select

from mailctl.models import Client, Mailing, MailingStatus, User
from mailctl.services.access import OVERSIGHT_ROLES, ensure_active
from mailctl.services.audiences import in_any_audience


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
    # One pass over the clients in some audience (see in_any_audience and migration 0018).
    unique = session.exec(
        select(func.count(func.distinct(Client.email_key))).where(in_any_audience(scope))
    ).one()
    return Stats(total_mailings=total, active_mailings=active, unique_clients=unique)
