"""Who may do what: the role table of ARCHITECTURE.md ("Who may do what"), in one place."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlmodel import Session, SQLModel

from mailctl.errors import Forbidden, NotFound
from mailctl.models import Role, User

T = TypeVar("T", bound=SQLModel)

CONTENT_ROLES = (Role.user.value, Role.admin.value)  # own clients, messages, mailings
OVERSIGHT_ROLES = (Role.manager.value, Role.admin.value)  # all mailings read-only, users
EDITOR_ROLES = (Role.editor.value, Role.admin.value)  # blog


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


def owner_scope(stmt: Any, model: type[SQLModel], actor: User, *, oversight: bool = False) -> Any:
    if sees_everything(actor, oversight=oversight):
        return stmt
    return stmt.where(model.owner_id == actor.id)  # type: ignore[attr-defined]


def get_visible(
    session: Session, model: type[T], obj_id: int, actor: User, *, oversight: bool = False
) -> T:
    """The object if the actor may see it; NotFound otherwise, so nobody learns it exists."""
    noun = model.__tablename__.rstrip("s").replace("_", " ")  # type: ignore[attr-defined]
    obj = session.get(model, obj_id)
    if obj is None or not (
        sees_everything(actor, oversight=oversight) or obj.owner_id == actor.id  # type: ignore[attr-defined]
    ):
        raise NotFound(f"{noun} {obj_id} not found")
    return obj
