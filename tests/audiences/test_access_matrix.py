"""The access matrix's rows for tags, custom fields, sign-up forms, the suppression list and
erasure (SPEC.md: "tags, custom fields, sign-up forms, layouts, suppression list: own only,
admin all"). Each role acts on the owner's objects; refusals change nothing, and a plain user
touching another's object learns only "not found"."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import Session

from mailctl.errors import Forbidden, NotFound
from mailctl.models import User
from mailctl.services import erasure, fields, signups, suppressions, tags
from tests.support.world import ACTORS, World, snapshot

OK, NF, FB = "ok", "notfound", "forbidden"
SECRET = "matrix-secret"

# fmt: off
MATRIX: dict[str, tuple[str, ...]] = {
    #                       owner other manager editor admin blocked
    "list_tags":           (OK,   OK,   FB,     FB,    OK,   FB),
    "tag_client":          (OK,   NF,   FB,     FB,    OK,   FB),
    "untag_client":        (OK,   NF,   FB,     FB,    OK,   FB),
    "delete_tag":          (OK,   NF,   FB,     FB,    OK,   FB),
    "set_tag_public":      (OK,   NF,   FB,     FB,    OK,   FB),
    "list_fields":         (OK,   OK,   FB,     FB,    OK,   FB),
    "add_field":           (OK,   NF,   FB,     FB,    OK,   FB),
    "delete_field":        (OK,   NF,   FB,     FB,    OK,   FB),
    "list_suppressions":   (OK,   OK,   FB,     FB,    OK,   FB),
    "add_suppression":     (OK,   NF,   FB,     FB,    OK,   FB),
    "remove_suppression":  (OK,   NF,   FB,     FB,    OK,   FB),
    "add_form":            (OK,   OK,   FB,     FB,    OK,   FB),
    "list_forms":          (OK,   OK,   FB,     FB,    OK,   FB),
    "get_form":            (OK,   NF,   FB,     FB,    OK,   FB),
    "delete_form":         (OK,   NF,   FB,     FB,    OK,   FB),
    "list_consents":       (OK,   NF,   FB,     FB,    OK,   FB),
    "erase_client":        (OK,   NF,   FB,     FB,    OK,   FB),
}
# fmt: on


@dataclass
class Ctx:
    s: Session
    w: World
    role: str
    target: str
    objects: dict[str, Any]

    @property
    def actor(self) -> User:
        return self.w.users[self.role]

    @property
    def owner_id(self) -> int:
        return self.w.users[self.target].id or 0

    def kw(self) -> dict[str, Any]:
        return {"session": self.s, "actor": self.actor}


def _objects(session: Session, world: World, target: str) -> dict[str, Any]:
    """A tag, a field, a suppression entry and a form of the target's, made directly."""
    from mailctl.models import ClientField, ClientTag, SignupForm, Tag
    from mailctl.services.suppressions import suppress_address

    owner = world.users[target].id or 0
    tag = Tag(owner_id=owner, name="news", name_key="news")
    session.add(tag)
    session.add(ClientField(owner_id=owner, name="city"))
    session.flush()
    session.add(ClientTag(client_id=world.clients[target], tag_id=tag.id or 0))
    form = SignupForm(owner_id=owner, public_id=f"form-of-{target}")
    session.add(form)
    suppress_address(
        session, owner_id=owner, email="gone@example.com", reason="manual", secret=SECRET
    )
    session.flush()
    return {"form": form.id}


OPS: dict[str, Callable[[Ctx], Any]] = {
    "list_tags": lambda c: tags.list_tags(**c.kw()),
    "tag_client": lambda c: tags.tag_client(
        **c.kw(), client_id=c.w.clients[c.target], names=["vip"]
    ),
    "untag_client": lambda c: tags.untag_client(
        **c.kw(), client_id=c.w.clients[c.target], names=["news"]
    ),
    "delete_tag": lambda c: tags.delete_tag(**c.kw(), name="news", owner_id=c.owner_id),
    "set_tag_public": lambda c: tags.set_tag_public(
        **c.kw(), name="news", public=True, owner_id=c.owner_id
    ),
    "list_fields": lambda c: fields.list_fields(**c.kw()),
    "add_field": lambda c: fields.add_field(**c.kw(), name="zip", owner_id=c.owner_id),
    "delete_field": lambda c: fields.delete_field(**c.kw(), name="city", owner_id=c.owner_id),
    "list_suppressions": lambda c: suppressions.list_suppressions(**c.kw()),
    "add_suppression": lambda c: suppressions.add_suppression(
        **c.kw(), email="new@example.com", secret=SECRET, owner_id=c.owner_id
    ),
    "remove_suppression": lambda c: suppressions.remove_suppression(
        **c.kw(), email="gone@example.com", secret=SECRET, note="asked", owner_id=c.owner_id
    ),
    "add_form": lambda c: signups.add_form(**c.kw(), tags=["joiners"]),
    "list_forms": lambda c: signups.list_forms(**c.kw()),
    "get_form": lambda c: signups.get_form(**c.kw(), form_id=c.objects["form"]),
    "delete_form": lambda c: signups.delete_form(**c.kw(), form_id=c.objects["form"]),
    "list_consents": lambda c: signups.list_consents(**c.kw(), client_id=c.w.clients[c.target]),
    "erase_client": lambda c: erasure.erase_client(
        **c.kw(), client_id=c.w.clients[c.target], secret=SECRET
    ),
}
assert set(OPS) == set(MATRIX)

CASES = [
    pytest.param(role, op, expected, id=f"{role}-{op}-{expected}")
    for op, row in MATRIX.items()
    for role, expected in zip(ACTORS, row, strict=True)
]
LISTS = {"list_tags", "list_fields", "list_suppressions", "list_forms"}


def _owners(op: str, result: Any) -> set[int]:
    if op in ("list_tags", "list_forms"):
        return {(r.tag if op == "list_tags" else r.form).owner_id for r in result}
    return {r.owner_id for r in result}


@pytest.mark.parametrize(("role", "op", "expected"), CASES)
def test_matrix(session: Session, world: World, role: str, op: str, expected: str) -> None:
    target = "blocked" if role == "blocked" else "owner"
    objects = _objects(session, world, target)
    if role in ("other", "admin"):
        _objects(session, world, role)  # their own, so a list shows what scoping does
    ctx = Ctx(session, world, role, target, objects)
    if expected == OK:
        result = OPS[op](ctx)
        session.flush()
        if op in LISTS:
            me, owner = ctx.actor.id, world.users["owner"].id
            assert _owners(op, result) == ({me} if role != "admin" else {me, owner})
        return
    before = snapshot(session)
    with pytest.raises(NotFound if expected == NF else Forbidden) as info:
        OPS[op](ctx)
    assert snapshot(session) == before
    if expected == NF:
        text = str(info.value)
        assert "owner@example.com" not in text and "Client of owner" not in text
        assert re.fullmatch(r"[\w .@-]+ (not found|is not on the suppression list)", text), text


def test_every_public_service_function_with_an_actor_has_a_row() -> None:
    modules = (tags, fields, suppressions, signups, erasure)
    needs_actor = {
        name
        for mod in modules
        for name, fn in vars(mod).items()
        if inspect.isfunction(fn)
        and fn.__module__ == mod.__name__
        and not name.startswith("_")
        and "actor" in inspect.signature(fn).parameters
    }
    assert needs_actor - set(OPS) == set()
