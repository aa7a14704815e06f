"""Who may do what: the role table of ARCHITECTURE.md ("Who may do what"), in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlmodel import Session, col

from mailctl.errors import Forbidden, NotFound
from mailctl.models import (
    Client,
    ClientField,
    Layout,
    Mailing,
    Message,
    Role,
    SignupForm,
    Suppression,
    Tag,
    User,
)

# What users own: each has an owner_id, and another user's is "not found".
Owned = TypeVar(
    "Owned", Client, Message, Mailing, Tag, Suppression, ClientField, SignupForm, Layout
)
# A select statement, of one entity or of several columns: filters keep its type.
Q = TypeVar("Q", bound="Select[*tuple[Any, ...]]")

CONTENT_ROLES = (Role.user.value, Role.admin.value)  # own clients, messages, mailings
OVERSIGHT_ROLES = (Role.manager.value, Role.admin.value)  # all mailings read-only, users
EDITOR_ROLES = (Role.editor.value, Role.admin.value)  # blog
VIEW_ROLES = CONTENT_ROLES + OVERSIGHT_ROLES  # who sees mailings (their own, or all)


def ensure_active(actor: User) -> None:
    if not actor.is_active:
        raise Forbidden(f"user {actor.email} is blocked")


def require_role(actor: User, roles: tuple[str, ...], what: str) -> None:
    ensure_active(actor)
    if actor.role not in roles:
        raise Forbidden(f"a {actor.role} cannot {what}")


def sees_everything(actor: User, *, oversight: bool = False) -> bool:
    """Admins see every object; managers see every mailing (and its logs) read-only."""
    return actor.role == Role.admin.value or (oversight and actor.role == Role.manager.value)


def owner_scope(stmt: Q, model: type[Owned], actor: User, *, oversight: bool = False) -> Q:
    if sees_everything(actor, oversight=oversight):
        return stmt
    return stmt.where(col(model.owner_id) == actor.id)


def get_visible(
    session: Session, model: type[Owned], obj_id: int, actor: User, *, oversight: bool = False
) -> Owned:
    """The object if the actor may see it; NotFound otherwise, so nobody learns it exists."""
    obj = session.get(model, obj_id)
    if obj is None or not (sees_everything(actor, oversight=oversight) or obj.owner_id == actor.id):
        raise NotFound(f"{model.__name__.lower()} {obj_id} not found")
    return obj


def acting_owner(actor: User, owner_id: int | None, missing: str) -> int:
    """Whose objects an operation by name acts on: the actor's own, or (an admin only) the
    given owner's; anyone else asking for another owner's gets NotFound(`missing`)."""
    assert actor.id is not None
    if owner_id is None or owner_id == actor.id:
        return actor.id
    if actor.role != Role.admin.value:
        raise NotFound(missing)
    return owner_id


@dataclass(frozen=True)
class Capabilities:
    """What the actor may do, for pages to offer only what works. Computed from the rules the
    services enforce (the same role tables); the services still refuse everything else."""

    actor: User | None

    def _is(self, roles: tuple[str, ...]) -> bool:
        return self.actor is not None and self.actor.is_active and self.actor.role in roles

    @property
    def can_edit_content(self) -> bool:
        """Clients, messages and mailings of one's own (an admin: anyone's)."""
        return self._is(CONTENT_ROLES)

    @property
    def can_view_mailings(self) -> bool:
        return self._is(VIEW_ROLES)

    @property
    def can_manage_users(self) -> bool:
        """The users list, blocking and unblocking."""
        return self._is(OVERSIGHT_ROLES)

    @property
    def can_set_roles(self) -> bool:
        return self._is((Role.admin.value,))

    @property
    def can_edit_blog(self) -> bool:
        return self._is(EDITOR_ROLES)

    def _sees(self, mailing: Mailing, *, oversight: bool) -> bool:
        actor = self.actor
        return actor is not None and (
            sees_everything(actor, oversight=oversight) or mailing.owner_id == actor.id
        )

    def can_edit_mailing(self, mailing: Mailing) -> bool:
        """Edit, delete, send by hand: the owner or an admin, never a manager."""
        return self.can_edit_content and self._sees(mailing, oversight=False)

    def can_send_mailing(self, mailing: Mailing) -> bool:
        return self.can_edit_mailing(mailing) and mailing.is_enabled

    def can_disable(self, mailing: Mailing) -> bool:
        """Disable or re-enable: whoever may see the mailing (owner, any manager, any admin)."""
        return self.can_view_mailings and self._sees(mailing, oversight=True)

    def can_block(self, person: User) -> bool:
        """Block or unblock `person`: managers and admins, never themselves; an admin's
        account only an admin (set_blocked refuses a manager blocking an admin)."""
        actor = self.actor
        return (
            self.can_manage_users
            and actor is not None
            and person.id != actor.id
            and (person.role != Role.admin.value or actor.role == Role.admin.value)
        )


def capabilities(actor: User | None) -> Capabilities:
    return Capabilities(actor)
