"""The role table of ARCHITECTURE.md, operation by operation, for every kind of actor.

Each role acts on the owner's objects (the blocked user on its own), except the `add_*`
operations, which use the actor's own message and client. Refusals must change nothing, and a
plain user touching someone else's object learns only "not found".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from mailctl.db import utcnow
from mailctl.errors import Forbidden, NotFound
from mailctl.models import Client, Mailing, Message, User
from mailctl.schedule import Clock
from mailctl.services import accounts, blog, clients, mailing_rows, mailings, messages, users
from tests.support.env import PASSWORD
from tests.support.world import ACTORS, World, snapshot

# The clock every call here runs on: UTC wall time, real periods.
CLOCK = Clock(tz="UTC", period_seconds=None)

OK, NF, FB = "ok", "notfound", "forbidden"

# fmt: off
# One row per service operation, one column per actor, as in ARCHITECTURE.md's role table:
#   clients, messages, mailings: create, edit, delete, send  -> user own only, admin all
#   view mailings and their logs                             -> user own, manager all, admin all
#   disable / re-enable a mailing                            -> user own, manager any, admin any
#   list users, block / unblock users                        -> manager, admin
#   blog posts: create, edit, delete, publish                -> editor, admin
# A blocked account can do nothing at all.
MATRIX: dict[str, tuple[str, ...]] = {
    #                    owner other manager editor admin blocked
    "add_client":       (OK,   OK,   FB,     FB,    OK,   FB),
    "list_clients":     (OK,   OK,   FB,     FB,    OK,   FB),
    "count_clients":    (OK,   OK,   FB,     FB,    OK,   FB),
    "get_client":       (OK,   NF,   FB,     FB,    OK,   FB),
    "edit_client":      (OK,   NF,   FB,     FB,    OK,   FB),
    "delete_client":    (OK,   NF,   FB,     FB,    OK,   FB),
    "import_clients":   (OK,   OK,   FB,     FB,    OK,   FB),
    "export_clients":   (OK,   OK,   FB,     FB,    OK,   FB),
    "export_csv":       (OK,   OK,   FB,     FB,    OK,   FB),
    "check_may_add":    (OK,   OK,   FB,     FB,    OK,   FB),
    "check_may_import": (OK,   OK,   FB,     FB,    OK,   FB),
    "client_form":      (OK,   NF,   FB,     FB,    OK,   FB),

    "add_message":      (OK,   OK,   FB,     FB,    OK,   FB),
    "list_messages":    (OK,   OK,   FB,     FB,    OK,   FB),
    "get_message":      (OK,   NF,   FB,     FB,    OK,   FB),
    "edit_message":     (OK,   NF,   FB,     FB,    OK,   FB),
    "delete_message":   (OK,   NF,   FB,     FB,    OK,   FB),
    "preview_message":  (OK,   NF,   FB,     FB,    OK,   FB),
    "preview_clients":  (OK,   NF,   FB,     FB,    OK,   FB),
    "check_may_write":  (OK,   OK,   FB,     FB,    OK,   FB),

    "add_mailing":      (OK,   OK,   FB,     FB,    OK,   FB),
    "list_mailings":    (OK,   OK,   OK,     FB,    OK,   FB),
    "listing":          (OK,   OK,   OK,     FB,    OK,   FB),
    "get_mailing":      (OK,   NF,   OK,     FB,    OK,   FB),
    "edit_mailing":     (OK,   NF,   FB,     FB,    OK,   FB),
    "delete_mailing":   (OK,   NF,   FB,     FB,    OK,   FB),
    "disable_mailing":  (OK,   NF,   OK,     FB,    OK,   FB),
    "enable_mailing":   (OK,   NF,   OK,     FB,    OK,   FB),
    "require_sendable": (OK,   NF,   FB,     FB,    OK,   FB),
    "stats":            (OK,   OK,   OK,     OK,    OK,   FB),
    "list_mailing_rows": (OK,  OK,   OK,     FB,    OK,   FB),
    "recent_mailings":  (OK,   OK,   OK,     FB,    OK,   FB),
    "get_mailing_row":  (OK,   NF,   OK,     FB,    OK,   FB),
    "mailing_form_choices": (OK, OK, FB,     FB,    OK,   FB),
    "new_mailing_form": (OK,   OK,   FB,     FB,    OK,   FB),
    "edit_mailing_form": (OK,  NF,   FB,     FB,    OK,   FB),
    "first_steps":      (OK,   OK,   FB,     FB,    OK,   FB),

    "list_users":       (FB,   FB,   OK,     FB,    OK,   FB),
    "count_users_visible": (FB, FB,  OK,     FB,    OK,   FB),
    "get_user":         (FB,   FB,   OK,     FB,    OK,   FB),
    "get_self":         (OK,   OK,   OK,     OK,    OK,   FB),
    "find_user":        (FB,   FB,   OK,     FB,    OK,   FB),
    "edit_user":        (FB,   FB,   FB,     FB,    OK,   FB),
    "edit_self":        (OK,   OK,   OK,     OK,    OK,   FB),
    "add_user":         (FB,   FB,   FB,     FB,    OK,   FB),
    "block_user":       (FB,   FB,   OK,     FB,    OK,   FB),
    "unblock_user":     (FB,   FB,   OK,     FB,    OK,   FB),
    "set_role":         (FB,   FB,   FB,     FB,    OK,   FB),
    "verify_user":      (FB,   FB,   FB,     FB,    OK,   FB),
    "set_password":     (FB,   FB,   FB,     FB,    OK,   FB),
    "set_own_password": (OK,   OK,   OK,     OK,    OK,   FB),
    "delete_user":      (FB,   FB,   FB,     FB,    OK,   FB),
    # Ending one's own sessions (logout) is harmless, so even a blocked account may.
    "end_sessions":     (OK,   OK,   OK,     OK,    OK,   OK),
    "change_password":  (OK,   OK,   OK,     OK,    OK,   FB),

    "add_post":         (FB,   FB,   FB,     OK,    OK,   FB),
    "list_posts":       (FB,   FB,   FB,     OK,    OK,   FB),
    "count_posts":      (FB,   FB,   FB,     OK,    OK,   FB),
    "check_may_manage": (FB,   FB,   FB,     OK,    OK,   FB),
    "get_post":         (FB,   FB,   FB,     OK,    OK,   FB),
    "edit_post":        (FB,   FB,   FB,     OK,    OK,   FB),
    "publish_post":     (FB,   FB,   FB,     OK,    OK,   FB),
    "delete_post":      (FB,   FB,   FB,     OK,    OK,   FB),
}
# fmt: on


@dataclass
class Ctx:
    s: Session
    w: World
    role: str  # who acts
    target: str  # whose objects they act on

    @property
    def actor(self) -> User:
        return self.w.users[self.role]

    @property
    def subject_id(self) -> int:
        return self.w.users["subject"].id or 0

    def kw(self) -> dict[str, Any]:
        return {"session": self.s, "actor": self.actor}


CSV = b"email,full_name,comment\nimported@example.com,Imported,\n"
NEW_PASSWORD = "a brand new passphrase"


def _start() -> Any:
    return utcnow() + timedelta(hours=2)


OPS: dict[str, Callable[[Ctx], Any]] = {
    "add_client": lambda c: clients.add_client(**c.kw(), email="new@example.com"),
    "list_clients": lambda c: clients.list_clients(**c.kw()),
    "count_clients": lambda c: clients.count_clients(**c.kw()),
    "get_client": lambda c: clients.get_client(**c.kw(), client_id=c.w.clients[c.target]),
    "edit_client": lambda c: clients.edit_client(
        **c.kw(), client_id=c.w.clients[c.target], full_name="Renamed"
    ),
    "delete_client": lambda c: clients.delete_client(**c.kw(), client_id=c.w.clients[c.target]),
    "import_clients": lambda c: clients.import_clients(**c.kw(), data=CSV),
    "export_clients": lambda c: clients.export_clients(**c.kw()),
    "export_csv": lambda c: "".join(clients.export_csv(**c.kw())),
    "check_may_add": lambda c: clients.check_may_add(actor=c.actor),
    "check_may_import": lambda c: clients.check_may_import(actor=c.actor),
    "client_form": lambda c: clients.client_form(**c.kw(), client_id=c.w.clients[c.target]),
    "add_message": lambda c: messages.add_message(**c.kw(), subject="S", body="B"),
    "list_messages": lambda c: messages.list_messages(**c.kw()),
    "get_message": lambda c: messages.get_message(**c.kw(), message_id=c.w.messages[c.target]),
    "edit_message": lambda c: messages.edit_message(
        **c.kw(), message_id=c.w.messages[c.target], subject="Changed"
    ),
    "delete_message": lambda c: messages.delete_message(
        **c.kw(), message_id=c.w.messages[c.target]
    ),
    "preview_message": lambda c: messages.preview_message(
        **c.kw(),
        message_id=c.w.messages[c.target],
        client_id=c.w.clients[c.target],
        from_address="noreply@example.com",
        from_name="Shop",
    ),
    "preview_clients": lambda c: messages.preview_clients(
        **c.kw(), message_id=c.w.messages[c.target]
    ),
    "check_may_write": lambda c: messages.check_may_write(actor=c.actor),
    "add_mailing": lambda c: mailings.add_mailing(
        **c.kw(),
        message_id=c.w.messages[c.role],
        client_ids=[c.w.clients[c.role]],
        start=_start(),
        every="week",
        clock=CLOCK,
    ),
    "list_mailings": lambda c: mailings.list_mailings(**c.kw()),
    "listing": lambda c: c.s.exec(mailings.listing(select(Mailing), c.actor, None, None, 0)).all(),
    "get_mailing": lambda c: mailings.get_mailing(**c.kw(), mailing_id=c.w.mailings[c.target]),
    "edit_mailing": lambda c: mailings.edit_mailing(
        **c.kw(), mailing_id=c.w.mailings[c.target], every="week", clock=CLOCK
    ),
    "delete_mailing": lambda c: mailings.delete_mailing(
        **c.kw(), mailing_id=c.w.mailings[c.target]
    ),
    "disable_mailing": lambda c: mailings.set_enabled(
        **c.kw(), mailing_id=c.w.mailings[c.target], enabled=False
    ),
    "enable_mailing": lambda c: mailings.set_enabled(
        **c.kw(), mailing_id=c.w.mailings[c.target], enabled=True
    ),
    "require_sendable": lambda c: mailings.require_sendable(
        **c.kw(), mailing_id=c.w.mailings[c.target]
    ),
    "stats": lambda c: mailings.stats(**c.kw()),
    "list_mailing_rows": lambda c: mailing_rows.list_mailing_rows(**c.kw()),
    "recent_mailings": lambda c: mailings.recent_mailings(**c.kw(), count=100),
    "get_mailing_row": lambda c: mailing_rows.get_mailing_row(
        **c.kw(), mailing_id=c.w.mailings[c.target]
    ),
    "mailing_form_choices": lambda c: mailings.mailing_form_choices(
        **c.kw(), owner_id=c.w.users[c.target].id or 0
    ),
    "new_mailing_form": lambda c: mailings.new_mailing_form(**c.kw()),
    "first_steps": lambda c: mailings.first_steps(**c.kw()),
    "edit_mailing_form": lambda c: mailings.edit_mailing_form(
        **c.kw(), mailing_id=c.w.mailings[c.target]
    ),
    "list_users": lambda c: users.list_users(**c.kw()),
    "count_users_visible": lambda c: users.count_users_visible(**c.kw()),
    "get_user": lambda c: users.get_user(**c.kw(), user_id=c.subject_id),
    "get_self": lambda c: users.get_user(**c.kw(), user_id=c.actor.id or 0),
    "find_user": lambda c: users.find_user(**c.kw(), ref="subject@example.com"),
    "edit_user": lambda c: users.edit_user(**c.kw(), user_id=c.subject_id, full_name="Renamed"),
    "edit_self": lambda c: users.edit_user(**c.kw(), user_id=c.actor.id or 0, full_name="Me"),
    "add_user": lambda c: users.add_user(
        **c.kw(), email="fresh@example.com", password=NEW_PASSWORD
    ),
    "block_user": lambda c: users.set_blocked(**c.kw(), user_id=c.subject_id, blocked=True),
    "unblock_user": lambda c: users.set_blocked(**c.kw(), user_id=c.subject_id, blocked=False),
    "set_role": lambda c: users.set_role(**c.kw(), user_id=c.subject_id, role="editor"),
    "verify_user": lambda c: users.verify_user(**c.kw(), user_id=c.subject_id),
    "set_password": lambda c: users.set_password(
        **c.kw(), user_id=c.subject_id, new_password=NEW_PASSWORD
    ),
    "set_own_password": lambda c: users.set_password(
        **c.kw(), user_id=c.actor.id or 0, new_password=NEW_PASSWORD
    ),
    "delete_user": lambda c: users.delete_user(**c.kw(), user_id=c.subject_id),
    "end_sessions": lambda c: accounts.end_sessions(**c.kw()),
    "change_password": lambda c: accounts.change_password(
        **c.kw(), old_password=PASSWORD, new_password=NEW_PASSWORD, confirm=NEW_PASSWORD
    ),
    "add_post": lambda c: blog.add_post(**c.kw(), title="New", content="Text"),
    "list_posts": lambda c: blog.list_posts(**c.kw()),
    "count_posts": lambda c: blog.count_posts(**c.kw()),
    "check_may_manage": lambda c: blog.check_may_manage(actor=c.actor),
    "get_post": lambda c: blog.get_post(**c.kw(), post_id=c.w.post),
    "edit_post": lambda c: blog.edit_post(**c.kw(), post_id=c.w.post, title="Edited"),
    "publish_post": lambda c: blog.publish_post(**c.kw(), post_id=c.w.post),
    "delete_post": lambda c: blog.delete_post(**c.kw(), post_id=c.w.post),
}

assert set(OPS) == set(MATRIX)
assert all(len(row) == len(ACTORS) for row in MATRIX.values())

CASES = [
    pytest.param(role, op, expected, id=f"{role}-{op}-{expected}")
    for op, row in MATRIX.items()
    for role, expected in zip(ACTORS, row, strict=True)
]


def _owners(session: Session, model: type[Any], ids: list[int]) -> set[int]:
    return {session.get(model, i).owner_id for i in ids}  # type: ignore[union-attr]


def _check_visibility(c: Ctx, op: str, result: Any) -> None:
    """What a successful list shows: a plain user only its own, admins (and managers for
    mailings) everyone's."""
    models = {
        "list_clients": Client,
        "list_messages": Message,
        "list_mailings": Mailing,
        "listing": Mailing,
    }
    me = c.actor.id
    owner = c.w.users["owner"].id
    if op in models:
        owners = _owners(c.s, models[op], [obj.id for obj in result])
        if c.role in ("owner", "other"):
            assert owners == {me}
        else:
            assert owner in owners and len(owners) > 1
    elif op in ("export_clients", "export_csv"):
        assert ("client-of-owner@example.com" in result) == (c.role in ("owner", "admin"))
        if c.role == "other":
            assert "client-of-other@example.com" in result
    elif op == "stats":
        # Plain users (and editors, who own nothing visible) count their own mailings only.
        mine = c.role in ("owner", "other", "editor")
        assert result.total_mailings == (1 if mine else len(c.w.mailings))
    elif op == "count_clients":
        assert result == (1 if c.role in ("owner", "other") else len(c.w.clients))
    elif op == "first_steps":
        # Only the actor's own: an admin's guide counts what the admin owns, not everyone's.
        def own(model):  # type: ignore[no-untyped-def]
            return sum(1 for x in c.s.exec(select(model)).all() if x.owner_id == me)

        assert (result.clients, result.messages, result.mailings) == (
            own(Client),
            own(Message),
            own(Mailing),
        )
        assert result.clients < len(c.w.clients)
    elif op == "list_users":
        assert len(result) == len(c.w.users)
    elif op == "count_users_visible":
        assert result == len(c.w.users)
    elif op in ("list_mailing_rows", "recent_mailings"):
        found = [r.mailing for r in result] if op == "list_mailing_rows" else result
        owners = {m.owner_id for m in found}
        if c.role in ("owner", "other"):
            assert owners == {me}
        else:
            assert owner in owners and len(owners) > 1
    elif op == "mailing_form_choices":
        # The target owner's choices, never anyone else's; nothing at all for another user.
        messages_, clients_ = result
        mine = {owner} if c.role in ("owner", "admin") else set()
        assert {m.owner_id for m in messages_} == mine
        assert {x.owner_id for x in clients_} == mine


@pytest.mark.parametrize(("role", "op", "expected"), CASES)
def test_matrix(session: Session, world: World, role: str, op: str, expected: str) -> None:
    ctx = Ctx(session, world, role, "blocked" if role == "blocked" else "owner")
    if expected == OK:
        result = OPS[op](ctx)
        session.flush()
        _check_visibility(ctx, op, result)
        return
    before = snapshot(session)
    kind = NotFound if expected == NF else Forbidden
    with pytest.raises(kind) as info:
        OPS[op](ctx)
    assert snapshot(session) == before
    text = str(info.value)
    if expected == NF:
        # Exactly what a missing id gives: no owner, no email, no subject, no "forbidden".
        assert re.fullmatch(r"(client|message|mailing) \d+ not found", text), text


def test_matrix_covers_every_role_and_public_service_function() -> None:
    """A new service function must get a row in the table."""
    import inspect

    covered = set(OPS) | {"set_enabled", "set_blocked"}
    modules = (clients, messages, mailings, mailing_rows, users, accounts, blog)
    needs_actor = {
        f"{mod.__name__.rsplit('.', 1)[1]}.{name}"
        for mod in modules
        for name, fn in vars(mod).items()
        if inspect.isfunction(fn)
        and fn.__module__ == mod.__name__
        and not name.startswith("_")
        and "actor" in inspect.signature(fn).parameters
    }
    missing = {n.split(".", 1)[1] for n in needs_actor} - covered
    assert not missing, f"no matrix row for {sorted(missing)}"


def test_not_found_is_the_same_for_foreign_and_missing_ids(session: Session, world: World) -> None:
    other = world.users["other"]
    foreign = world.clients["owner"]
    missing = 999_999
    messages_seen = []
    for client_id in (foreign, missing):
        with pytest.raises(NotFound) as info:
            clients.get_client(session=session, actor=other, client_id=client_id)
        messages_seen.append(str(info.value).replace(str(client_id), "ID"))
    assert messages_seen[0] == messages_seen[1] == "client ID not found"


def test_plain_user_cannot_build_a_mailing_from_foreign_objects(
    session: Session, world: World
) -> None:
    other = world.users["other"]
    kw: dict[str, Any] = {"session": session, "actor": other, "start": _start()}
    before = snapshot(session)
    with pytest.raises(NotFound, match=r"^message \d+ not found$"):
        mailings.add_mailing(
            **kw,
            message_id=world.messages["owner"],
            client_ids=[world.clients["other"]],
            clock=CLOCK,
        )
    with pytest.raises(NotFound, match=r"^client \d+ not found$"):
        mailings.add_mailing(
            **kw,
            message_id=world.messages["other"],
            client_ids=[world.clients["owner"]],
            clock=CLOCK,
        )
    with pytest.raises(NotFound, match=r"^client \d+ not found$"):
        mailings.edit_mailing(
            session=session,
            actor=other,
            mailing_id=world.mailings["other"],
            client_ids=[world.clients["owner"]],
            clock=CLOCK,
        )
    with pytest.raises(NotFound, match=r"^message \d+ not found$"):
        mailings.edit_mailing(
            session=session,
            actor=other,
            mailing_id=world.mailings["other"],
            message_id=world.messages["owner"],
            clock=CLOCK,
        )
    assert snapshot(session) == before


def test_all_clients_never_picks_another_users_clients(session: Session, world: World) -> None:
    owner = world.users["owner"]
    mailing = mailings.add_mailing(
        session=session,
        actor=owner,
        message_id=world.messages["owner"],
        all_clients=True,
        start=_start(),
        clock=CLOCK,
    )
    assert mailings.mailing_client_ids(session=session, mailing=mailing) == [world.clients["owner"]]


def test_manager_oversight_of_a_mailing(session: Session, world: World) -> None:
    manager = world.users["manager"]
    mailing_id = world.mailings["owner"]
    kw: dict[str, Any] = {"session": session, "actor": manager, "mailing_id": mailing_id}
    assert mailings.get_mailing(**kw).id == mailing_id
    assert mailings.set_enabled(**kw, enabled=False).is_enabled is False
    assert mailings.display_status(mailings.get_mailing(**kw)) == "created (disabled)"
    assert mailings.set_enabled(**kw, enabled=True).is_enabled is True
    before = snapshot(session)
    with pytest.raises(Forbidden):
        mailings.edit_mailing(**kw, every="month", clock=CLOCK)
    with pytest.raises(Forbidden):
        mailings.delete_mailing(**kw)
    with pytest.raises(Forbidden):
        messages.edit_message(
            session=session, actor=manager, message_id=world.messages["owner"], subject="x"
        )
    assert snapshot(session) == before


def test_owner_may_pause_and_then_not_send(session: Session, world: World) -> None:
    owner = world.users["owner"]
    kw: dict[str, Any] = {"session": session, "actor": owner, "mailing_id": world.mailings["owner"]}
    mailings.set_enabled(**kw, enabled=False)
    from mailctl.errors import Invalid

    with pytest.raises(Invalid, match="disabled"):
        mailings.require_sendable(**kw)


def test_admin_deletes_a_user_with_everything_they_own(session: Session, world: World) -> None:
    admin = world.users["admin"]
    owner = world.users["owner"]
    users.delete_user(session=session, actor=admin, user_id=owner.id or 0)
    session.flush()
    assert session.get(User, owner.id) is None
    session.expire_all()
    assert session.get(Mailing, world.mailings["owner"]) is None
    assert session.get(Client, world.clients["owner"]) is None
    assert session.get(Message, world.messages["owner"]) is None
